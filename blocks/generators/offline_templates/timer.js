
// Pomodoro timer: 25-minute focus and 5-minute break countdowns with start, pause and reset.
(() => {
  const root = pomBolt.section("timer");
  if (!root) return;
  const display = root.querySelector("#timer-display");
  const status = root.querySelector("#timer-status");
  const startButton = root.querySelector("#timer-start");
  const pauseButton = root.querySelector("#timer-pause");
  const resetButton = root.querySelector("#timer-reset");
  const sessionsLabel = root.querySelector("#timer-sessions");
  const modeButtons = Array.from(root.querySelectorAll("[data-mode]"));
  const pageTitle = document.title;
  const messages = { work: "Ready to focus.", break: "Time for a break." };

  let mode = "work";
  let remaining = durationOf(mode);
  let endsAt = 0;
  let ticker = null;
  let sessions = Number(pomBolt.load("timer.sessions", 0)) || 0;

  function durationOf(name) {
    const button = modeButtons.find((b) => b.dataset.mode === name);
    return Number(button && button.dataset.seconds) || 0;
  }

  function render() {
    display.textContent = pomBolt.clock(remaining);
    sessionsLabel.textContent = String(sessions);
    startButton.disabled = ticker !== null;
    pauseButton.disabled = ticker === null;
    modeButtons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.mode === mode)));
    document.title = ticker === null ? pageTitle : pomBolt.clock(remaining) + " · " + pageTitle;
  }

  function stopTicking() {
    if (ticker !== null) window.clearInterval(ticker);
    ticker = null;
  }

  function switchMode(name, message) {
    stopTicking();
    mode = name;
    remaining = durationOf(mode);
    status.textContent = message || messages[mode];
    render();
  }

  function tick() {
    remaining = Math.max(0, Math.ceil((endsAt - Date.now()) / 1000));
    if (remaining > 0) {
      render();
      return;
    }
    if (mode === "work") {
      sessions += 1;
      pomBolt.save("timer.sessions", sessions);
      switchMode("break", "Focus session done — take a break.");
    } else {
      switchMode("work", "Break over — ready to focus again.");
    }
  }

  startButton.addEventListener("click", () => {
    if (ticker !== null || remaining <= 0) return;
    endsAt = Date.now() + remaining * 1000;
    ticker = window.setInterval(tick, 250);
    status.textContent = mode === "work" ? "Focusing…" : "On a break…";
    render();
  });

  pauseButton.addEventListener("click", () => {
    if (ticker === null) return;
    remaining = Math.max(0, Math.ceil((endsAt - Date.now()) / 1000));
    stopTicking();
    status.textContent = "Paused.";
    render();
  });

  resetButton.addEventListener("click", () => switchMode(mode));
  modeButtons.forEach((b) => b.addEventListener("click", () => switchMode(b.dataset.mode)));
  render();
})();
