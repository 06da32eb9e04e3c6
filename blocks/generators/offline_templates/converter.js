
// Unit converter: temperature, distance, weight and length, updated as you type.
(() => {
  const root = pomBolt.section("converter");
  if (!root) return;
  const input = root.querySelector("#converter-input");
  const kind = root.querySelector("#converter-kind");
  const result = root.querySelector("#converter-result");
  const conversions = {
    "c-f": [(v) => (v * 9) / 5 + 32, "°F"],
    "f-c": [(v) => ((v - 32) * 5) / 9, "°C"],
    "km-mi": [(v) => v / 1.609344, "mi"],
    "mi-km": [(v) => v * 1.609344, "km"],
    "kg-lb": [(v) => v / 0.45359237, "lb"],
    "lb-kg": [(v) => v * 0.45359237, "kg"],
    "cm-in": [(v) => v / 2.54, "in"],
    "in-cm": [(v) => v * 2.54, "cm"],
  };

  function update() {
    const value = Number(input.value);
    const entry = conversions[kind.value];
    if (!entry || input.value.trim() === "" || !Number.isFinite(value)) {
      result.textContent = "—";
      return;
    }
    result.textContent = String(Number(entry[0](value).toFixed(2))) + " " + entry[1];
  }

  root.querySelector("#converter-form").addEventListener("submit", (event) => event.preventDefault());
  input.addEventListener("input", update);
  kind.addEventListener("change", update);
  update();
})();
