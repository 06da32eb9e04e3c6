
// Task list: add, tick off and delete tasks; kept in localStorage.
(() => {
  const root = pomBolt.section("tasks");
  if (!root) return;
  const form = root.querySelector("#tasks-form");
  const input = root.querySelector("#tasks-input");
  const list = root.querySelector("#tasks-list");
  const summary = root.querySelector("#tasks-summary");
  const clearDone = root.querySelector("#tasks-clear-done");

  let tasks = pomBolt.load("tasks", []);
  if (!Array.isArray(tasks)) tasks = [];
  let nextId = tasks.reduce((max, t) => Math.max(max, Number(t.id) || 0), 0) + 1;

  function persist() {
    pomBolt.save("tasks", tasks);
    render();
  }

  function renderItem(task) {
    const item = document.createElement("li");
    item.className = task.done ? "task done" : "task";
    item.dataset.taskId = String(task.id);

    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = Boolean(task.done);
    box.addEventListener("change", () => {
      task.done = box.checked;
      persist();
    });
    const text = document.createElement("span");
    text.className = "task-text";
    text.textContent = task.text;
    label.append(box, text);

    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "task-delete";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", "Delete task: " + task.text);
    remove.addEventListener("click", () => {
      tasks = tasks.filter((t) => t !== task);
      persist();
    });

    item.append(label, remove);
    return item;
  }

  function render() {
    list.replaceChildren(...tasks.map(renderItem));
    const open = tasks.filter((t) => !t.done).length;
    summary.textContent = tasks.length === 0 ? "No tasks yet." : open + " of " + tasks.length + " left";
    clearDone.disabled = tasks.every((t) => !t.done);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    tasks.push({ id: nextId++, text: text, done: false });
    input.value = "";
    persist();
    input.focus();
  });

  clearDone.addEventListener("click", () => {
    tasks = tasks.filter((t) => !t.done);
    persist();
  });

  render();
})();
