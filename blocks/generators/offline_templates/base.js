/* Pom-Bolt offline template: shared helpers, then one block per feature section. */
"use strict";

const pomBolt = (() => {
  // One storage namespace per app, so several generated apps on one origin do not share data.
  const prefix = "pombolt:" + window.location.pathname.replace(/index\.html$/, "") + ":";

  function load(key, fallback) {
    try {
      const raw = window.localStorage.getItem(prefix + key);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (err) {
      return fallback;
    }
  }

  function save(key, value) {
    try {
      window.localStorage.setItem(prefix + key, JSON.stringify(value));
    } catch (err) {
      // Storage may be full or disabled (private mode); the app keeps working without it.
    }
  }

  function section(name) {
    return document.querySelector('[data-feature="' + name + '"]');
  }

  function pad(value, width) {
    return String(value).padStart(width || 2, "0");
  }

  function clock(totalSeconds) {
    const seconds = Math.max(0, Math.floor(totalSeconds));
    return pad(Math.floor(seconds / 60)) + ":" + pad(seconds % 60);
  }

  return { load, save, section, pad, clock };
})();
