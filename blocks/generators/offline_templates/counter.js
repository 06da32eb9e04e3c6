
// Counter: increase, decrease and reset by a chosen step; the count is remembered.
(() => {
  const root = pomBolt.section("counter");
  if (!root) return;
  const value = root.querySelector("#counter-value");
  const stepInput = root.querySelector("#counter-step");
  let count = Number(pomBolt.load("counter", 0)) || 0;

  function step() {
    const n = Math.floor(Number(stepInput.value));
    return Number.isFinite(n) && n > 0 ? n : 1;
  }

  function set(next) {
    count = next;
    pomBolt.save("counter", count);
    value.textContent = String(count);
  }

  root.querySelector("#counter-increment").addEventListener("click", () => set(count + step()));
  root.querySelector("#counter-decrement").addEventListener("click", () => set(count - step()));
  root.querySelector("#counter-reset").addEventListener("click", () => set(0));
  set(count);
})();
