// Add a style sheet to the page; returns a function that takes it away. A constructed
// sheet where the browser has them, which a strict Content-Security-Policy (no
// 'unsafe-inline' styles) allows, and a <style> element elsewhere.

export function sheet(css) {
  if (document.adoptedStyleSheets && window.CSSStyleSheet) {
    try {
      const s = new CSSStyleSheet();
      s.replaceSync(css);
      document.adoptedStyleSheets = document.adoptedStyleSheets.concat(s);
      return () => {
        document.adoptedStyleSheets = document.adoptedStyleSheets.filter((x) => x !== s);
      };
    } catch (e) {
      /* fall back to an element */
    }
  }
  const el = document.createElement('style');
  el.textContent = css;
  document.head.appendChild(el);
  return () => el.remove();
}
