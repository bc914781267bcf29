// Put a decided widget on the page: in an overlay (modal, slide-in, bar), inside an element
// (inline) or instead of one (replace). Elements inside a widget marked `data-sc-dismiss`
// close it, `data-sc-convert` reports a conversion, and any other link or button a click
// (of the product card around it, `data-sc-product`, if any).
// A widget's own <style> elements become constructed sheets (see sheet.js), so a template
// looks the same on a site whose Content-Security-Policy refuses inline styles; a form in it
// runs through forms.js.

import { sheet } from './sheet.js';
import { form } from './forms.js';

// Overlays must look and work the same on any site: their layout is doubled in specificity
// and marked !important, so the site's own rules cannot move, hide or restyle them. Inline
// and replaced widgets take the site's styles on purpose: they are part of its content.
// Every class is prefixed sc-, so nothing here touches the site.
const I = '!important;';
const CSS =
  '.sc-w{box-sizing:border-box;font:inherit}' +
  `.sc-overlay.sc-overlay{position:fixed${I}inset:0${I}background:rgba(0,0,0,.5)${I}display:flex${I}align-items:center${I}justify-content:center${I}z-index:2147483000${I}margin:0${I}}` +
  `.sc-w.sc-modal{background:#fff${I}color:#111${I}max-width:34rem${I}width:calc(100% - 2rem)${I}padding:1.5rem${I}border-radius:.5rem${I}position:relative${I}display:block${I}}` +
  `.sc-w.sc-slide-in{position:fixed${I}right:1rem${I}bottom:1rem${I}left:auto${I}top:auto${I}max-width:22rem${I}background:#fff${I}color:#111${I}padding:1rem 2.5rem 1rem 1rem${I}border-radius:.5rem${I}box-shadow:0 4px 24px rgba(0,0,0,.25)${I}z-index:2147483000${I}display:block${I}}` +
  '.sc-w.sc-modal:focus{outline:0}' + // it takes the focus only to hand it on with Tab
  `.sc-w.sc-bar{position:fixed${I}left:0${I}right:0${I}top:0${I}bottom:auto${I}background:#111${I}color:#fff${I}padding:.75rem 3rem .75rem 1rem${I}z-index:2147483000${I}display:block${I}}` +
  `.sc-w .sc-close.sc-close{position:absolute${I}top:.25rem${I}right:.5rem${I}display:block${I}visibility:visible${I}background:none${I}border:0${I}font-size:1.5rem${I}line-height:1${I}cursor:pointer${I}color:inherit${I}}`;

const adopted = new Set();
function styles(css) {
  if (!adopted.has(css)) sheet(css);
  adopted.add(css);
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

// Show decision `d`; `report(type)` tells the server what the visitor did with it, and
// `submit(fields)` posts its form. Returns false when the placement's element is not on the page,
// else `close()`: take it off the page (and put back what it replaced), as no dismissal.
export function render(d, report, submit) {
  const { type, selector } = d.placement;
  const target = selector ? document.querySelector(selector) : null;
  if ((type === 'replace' || type === 'inline') && !target) return false;
  styles(CSS);
  const box = document.createElement('div');
  box.className = 'sc-w sc-' + type;
  box.dataset.scRule = d.rule;
  box.innerHTML = d.html;
  // Taken out before the box is on the page, so a strict CSP never sees an inline style.
  for (const s of box.querySelectorAll('style')) {
    styles(s.textContent);
    s.remove();
  }
  const returnFocus = document.activeElement;
  let outer = box;
  let closed = false;
  let sent = false; // its form was taken: closing it now is no dismissal

  function close(dismissed) {
    if (closed) return;
    closed = true;
    if (type === 'replace') outer.replaceWith(target);
    else outer.remove();
    document.removeEventListener('keydown', onKey);
    if (dismissed && returnFocus && returnFocus.focus) returnFocus.focus();
    if (dismissed && !sent) report('dismiss');
  }
  function onKey(e) {
    if (e.key === 'Escape') close(true);
    else if (e.key === 'Tab' && type === 'modal') {
      // Keep the focus inside the modal: from the last control back to the first.
      // Only what the keyboard can reach: not a form's hidden steps, nor its honeypot.
      const controls = Array.from(box.querySelectorAll('a[href],button,input,select,textarea')).filter(
        (c) => c.tabIndex >= 0 && c.getClientRects().length,
      );
      const first = controls[0];
      const last = controls[controls.length - 1];
      const at = document.activeElement;
      const outside = !box.contains(at);
      if (e.shiftKey && (outside || at === first || at === box)) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && (outside || at === last)) {
        e.preventDefault();
        first.focus();
      }
    }
  }

  box.addEventListener('click', (e) => {
    const el = e.target.closest && e.target.closest('[data-sc-dismiss],[data-sc-convert],a,button');
    if (!el || el.classList.contains('sc-close')) return;
    if (el.hasAttribute('data-sc-dismiss')) close(true);
    else if (el.hasAttribute('data-sc-convert')) report('convert');
    // A form's buttons: its submission says what happened.
    else if (!el.form) report('click', (el.closest('[data-sc-product]') || el).dataset);
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
  // The server counts the submission as the conversion: no `convert` event is sent for it.
  form(box, submit, () => (sent = true));
  return close;
}
