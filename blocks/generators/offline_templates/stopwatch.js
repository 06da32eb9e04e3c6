
// Stopwatch: start, stop, laps and reset, to a tenth of a second.
(() => {
  const root = pomBolt.section("stopwatch");
  if (!root) return;
  const display = root.querySelector("#stopwatch-display");
  const toggle = root.querySelector("#stopwatch-toggle");
  const lapButton = root.querySelector("#stopwatch-lap");
  const laps = root.querySelector("#stopwatch-laps");
  let elapsed = 0;
  let startedAt = 0;
  let ticker = null;

  function now() {
    return ticker === null ? elapsed : elapsed + (Date.now() - startedAt);
  }

  function format(ms) {
    const tenths = Math.floor(ms / 100);
    return pomBolt.clock(Math.floor(tenths / 10)) + "." + (tenths % 10);
  }

  function render() {
    display.textContent = format(now());
    toggle.textContent = ticker === null ? (elapsed > 0 ? "Resume" : "Start") : "Stop";
    lapButton.disabled = ticker === null;
  }

  toggle.addEventListener("click", () => {
    if (ticker === null) {
      startedAt = Date.now();
      ticker = window.setInterval(render, 100);
    } else {
      elapsed += Date.now() - startedAt;
      window.clearInterval(ticker);
      ticker = null;
    }
    render();
  });

  lapButton.addEventListener("click", () => {
    const item = document.createElement("li");
    item.textContent = "Lap " + (laps.children.length + 1) + ": " + format(now());
    laps.prepend(item);
  });

  root.querySelector("#stopwatch-reset").addEventListener("click", () => {
    if (ticker !== null) window.clearInterval(ticker);
    ticker = null;
    elapsed = 0;
    laps.replaceChildren();
    render();
  });

  render();
})();
