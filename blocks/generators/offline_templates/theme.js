
// Dark mode: a toggle that switches the "dark" class on <body> and remembers the choice.
(() => {
  const root = pomBolt.section("theme");
  if (!root) return;
  const toggle = root.querySelector("#theme-toggle");
  const stored = pomBolt.load("theme", null);

  function apply(dark) {
    document.body.classList.toggle("dark", dark);
    document.body.classList.toggle("light", !dark);
    toggle.setAttribute("aria-pressed", String(dark));
    toggle.textContent = dark ? "Dark mode: on" : "Dark mode: off";
  }

  apply(stored === null ? document.body.classList.contains("dark") : stored === "dark");
  toggle.addEventListener("click", () => {
    const dark = !document.body.classList.contains("dark");
    pomBolt.save("theme", dark ? "dark" : "light");
    apply(dark);
  });
})();
