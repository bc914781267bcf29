// Put a decided widget on the page: in an overlay (modal, slide-in, bar), inside an element
// (inline) or instead of one (replace). Elements inside a widget marked `data-sc-dismiss`
// close it, `data-sc-convert` reports a conversion, and any other link or button a click.

import { sheet } from './sheet.js';

const CSS =
  '.sc-w{box-sizing:border-box;font:inherit}' +
  '.sc-overlay{position:fixed;inset:0;background:rgba(0,0,0,.5);display:flex;align-items:center;justify-content:center;z-index:2147483000}' +
  '.sc-modal{background:#fff;color:#111;max-width:34rem;width:calc(100% - 2rem);padding:1.5rem;border-radius:.5rem;position:relative}' +
  '.sc-slide-in{position:fixed;right:1rem;bottom:1rem;max-width:22rem;background:#fff;color:#111;padding:1rem 2.5rem 1rem 1rem;border-radius:.5rem;box-shadow:0 4px 24px rgba(0,0,0,.25);z-index:2147483000}' +
  '.sc-bar{position:fixed;left:0;right:0;top:0;background:#111;color:#fff;padding:.75rem 3rem .75rem 1rem;z-index:2147483000}' +
  '.sc-close{position:absolute;top:.25rem;right:.5rem;background:none;border:0;font-size:1.5rem;line-height:1;cursor:pointer;color:inherit}';

let styled = false;
function styles() {
  if (!styled) sheet(CSS);
  styled = true;
}

function closeButton(close) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'sc-close';
  b.setAttribute('aria-label', 'Close');
  b.textContent = '×';
  b.addEventListener('click', close);
  return b;
}

// Show decision `d`; `report(type)` tells the server what the visitor did with it.
// Returns false when the placement's element is not on the page.
export function render(d, report) {
  const { type, selector } = d.placement;
  const target = selector ? document.querySelector(selector) : null;
  if ((type === 'replace' || type === 'inline') && !target) return false;
  styles();
  const box = document.createElement('div');
  box.className = 'sc-w sc-' + type;
  box.dataset.scRule = d.rule;
  box.innerHTML = d.html;
  const returnFocus = document.activeElement;
  let outer = box;
  let closed = false;

  function close(dismissed) {
    if (closed) return;
    closed = true;
    if (type === 'replace') outer.replaceWith(target);
    else outer.remove();
    document.removeEventListener('keydown', onKey);
    if (returnFocus && returnFocus.focus) returnFocus.focus();
    if (dismissed) report('dismiss');
  }
  function onKey(e) {
    if (e.key === 'Escape') close(true);
  }

  box.addEventListener('click', (e) => {
    const el = e.target.closest && e.target.closest('[data-sc-dismiss],[data-sc-convert],a,button');
    if (!el || el.classList.contains('sc-close')) return;
    if (el.hasAttribute('data-sc-dismiss')) close(true);
    else if (el.hasAttribute('data-sc-convert')) report('convert');
    else report('click');
  });

  if (type === 'replace') target.replaceWith(box);
  else if (type === 'inline') target.appendChild(box);
  else {
    // Every overlay is a dialog named by its heading; only the modal takes the focus.
    const heading = box.querySelector('h1,h2,h3');
    box.setAttribute('role', 'dialog');
    box.setAttribute('aria-label', heading ? heading.textContent.trim() : 'Offer');
    box.appendChild(closeButton(() => close(true)));
    document.addEventListener('keydown', onKey);
    if (type === 'modal') {
      outer = document.createElement('div');
      outer.className = 'sc-overlay';
      box.setAttribute('aria-modal', 'true');
      box.tabIndex = -1;
      outer.appendChild(box);
      outer.addEventListener('click', (e) => e.target === outer && close(true));
    }
    document.body.appendChild(outer);
    if (type === 'modal') box.focus();
  }
  return true;
}
