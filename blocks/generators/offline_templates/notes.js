
// Notes: a notepad saved to localStorage as you type, with a word count.
(() => {
  const root = pomBolt.section("notes");
  if (!root) return;
  const text = root.querySelector("#notes-text");
  const status = root.querySelector("#notes-status");
  const count = root.querySelector("#notes-count");
  const clear = root.querySelector("#notes-clear");
  let pending = null;

  function countWords() {
    const words = text.value.trim().split(/\s+/).filter(Boolean).length;
    count.textContent = words === 1 ? "1 word" : words + " words";
  }

  function saveNow() {
    pending = null;
    pomBolt.save("notes", text.value);
    status.textContent = "Saved.";
  }

  text.value = String(pomBolt.load("notes", ""));
  if (text.value) status.textContent = "Saved.";
  countWords();

  text.addEventListener("input", () => {
    status.textContent = "Saving…";
    countWords();
    if (pending !== null) window.clearTimeout(pending);
    pending = window.setTimeout(saveNow, 300);
  });

  clear.addEventListener("click", () => {
    text.value = "";
    countWords();
    saveNow();
    text.focus();
  });
})();
