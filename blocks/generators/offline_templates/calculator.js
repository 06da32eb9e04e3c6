
// Calculator: + − × ÷ with %, sign change and clear; no eval, keyboard works inside the section.
(() => {
  const root = pomBolt.section("calculator");
  if (!root) return;
  const display = root.querySelector("#calculator-display");
  const expression = root.querySelector("#calculator-expression");
  const symbols = { "+": "+", "-": "−", "*": "×", "/": "÷" };
  let current = "0";
  let stored = null;
  let operator = null;
  let fresh = true;

  function format(n) {
    return Number.isFinite(n) ? String(Number(n.toPrecision(12))) : "Error";
  }

  function compute(a, op, b) {
    if (op === "+") return a + b;
    if (op === "-") return a - b;
    if (op === "*") return a * b;
    return b === 0 ? NaN : a / b;
  }

  function render() {
    display.textContent = current;
    expression.textContent = stored === null || operator === null ? "\u00a0" : format(stored) + " " + symbols[operator];
  }

  function clearAll() {
    current = "0";
    stored = null;
    operator = null;
    fresh = true;
  }

  function finish(result) {
    current = format(result);
    fresh = true;
    if (current === "Error") {
      stored = null;
      operator = null;
    }
    return current !== "Error";
  }

  function press(key) {
    if (/^[0-9]$/.test(key)) {
      current = fresh || current === "0" ? key : current.length < 15 ? current + key : current;
      fresh = false;
    } else if (key === ".") {
      if (fresh) current = "0.";
      else if (!current.includes(".")) current += ".";
      fresh = false;
    } else if (key in symbols) {
      if (operator !== null && stored !== null && !fresh) {
        if (!finish(compute(stored, operator, Number(current)))) return render();
      }
      stored = Number(current) || 0;
      operator = key;
      fresh = true;
    } else if (key === "=") {
      if (operator === null || stored === null) return render();
      const result = compute(stored, operator, Number(current));
      stored = null;
      operator = null;
      finish(result);
    } else if (key === "negate") {
      if (current !== "0" && current !== "Error") current = current.startsWith("-") ? current.slice(1) : "-" + current;
    } else if (key === "percent") {
      finish((Number(current) || 0) / 100);
    } else if (key === "back") {
      if (!fresh) current = current.length > 1 && current !== "-0" ? current.slice(0, -1) : "0";
      if (current === "-") current = "0";
    } else if (key === "clear") {
      clearAll();
    }
    render();
  }

  root.querySelector("#calculator-keys").addEventListener("click", (event) => {
    const button = event.target.closest("[data-key]");
    if (button) press(button.dataset.key);
  });

  root.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.closest("button")) return; // let Enter press the focused key
    const keys = { Enter: "=", Escape: "clear", Backspace: "back", x: "*" };
    const key = keys[event.key] || event.key;
    if (/^[0-9.=+*/-]$/.test(key) || key === "clear" || key === "back") {
      event.preventDefault();
      press(key);
    }
  });

  render();
})();
