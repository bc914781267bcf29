// Watch the triggers the server asks for and call `fire(name)` when one happens.
// Clicks are delegated from the document, so elements added later count too.

export function watcher(fire) {
  const clicks = new Map();
  const visible = new Set();
  document.addEventListener(
    'click',
    (e) => {
      const el = e.target;
      if (!el || !el.closest) return;
      for (const [name, selector] of clicks) if (el.closest(selector)) fire(name);
    },
    true,
  );

  function watchVisible(name, selector) {
    if (visible.has(name) || !window.IntersectionObserver) return;
    visible.add(name);
    const io = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) {
        io.disconnect(); // once per page view
        fire(name);
      }
    });
    document.querySelectorAll(selector).forEach((el) => io.observe(el));
  }

  return {
    watch(specs) {
      for (const t of specs) {
        if (t.on === 'click') clicks.set(t.name, t.selector);
        else if (t.on === 'visible') watchVisible(t.name, t.selector);
      }
    },
  };
}
