// Forms inside widgets (lead capture). The server renders the markup (config/widgets/_form.html);
// the tag validates each step with the browser's own constraint validation, shows every
// message beside its field (read out by screen readers through aria-describedby and a polite
// live region) and focuses the first wrong field, then posts the answers to /v1/forms.

// Run the form in widget `box`, if it has one. `submit(fields)` posts them and resolves to
// [status, answer]; `done()` is called once the server took them. Every `data-sc-success`
// element in the widget is shown then (a template may add its own, such as a discount code).
export function form(box, submit, done) {
  const f = box.querySelector('form[data-sc-form]');
  if (!f) return;
  const steps = Array.from(f.querySelectorAll('[data-sc-step]'));
  const general = f.querySelector('[data-sc-form-error]');
  let at = 0;
  let busy = false;

  // Put `message` beside field `name` ('' clears it). Names are compared, never put into a
  // selector, so nothing the server answers can change what is selected.
  function mark(name, message) {
    for (const p of f.querySelectorAll('[data-sc-error]')) {
      if (p.getAttribute('data-sc-error') === name) p.textContent = message;
    }
    for (const el of f.elements) {
      if (el.name !== name) continue;
      if (message) el.setAttribute('aria-invalid', 'true');
      else el.removeAttribute('aria-invalid');
    }
  }

  function go(n, focus) {
    at = n;
    steps.forEach((s, i) => (s.hidden = i !== n));
    focus = focus || (steps[n] || f).querySelector('input,select,textarea');
    if (focus) focus.focus();
  }

  // Check the fields of `root`; show what is wrong and focus the first wrong field.
  function valid(root) {
    const names = new Set();
    for (const el of root.querySelectorAll('input,select,textarea')) {
      if (!el.willValidate || names.has(el.name)) continue;
      names.add(el.name); // a radio group is checked once
      mark(el.name, el.checkValidity() ? '' : el.validationMessage);
    }
    // A required choice of many: no native attribute says "at least one of these".
    for (const set of root.querySelectorAll('[data-sc-required]')) {
      const box = set.querySelector('[type=checkbox]');
      if (box && !set.querySelector(':checked')) mark(box.name, 'Please choose at least one.');
    }
    const first = root.querySelector('[aria-invalid]');
    if (first) first.focus();
    return !first;
  }

  // The answers, typed as the server expects: a choice of many is a list, a lone checkbox
  // (consent) a boolean, a number a number; an unchosen radio or empty number is left out.
  function values() {
    const out = {};
    for (const el of f.elements) {
      const { name, type, value } = el;
      if (!name || el.tagName === 'BUTTON') continue;
      if (type === 'checkbox') {
        if (el.closest('fieldset') === el.closest('[data-sc-step]')) out[name] = el.checked;
        else out[name] = (out[name] || []).concat(el.checked ? [value] : []);
      } else if (type === 'radio') {
        if (el.checked) out[name] = value;
      } else if (type === 'number') {
        if (value !== '') out[name] = el.valueAsNumber;
      } else out[name] = value;
    }
    return out;
  }

  function fail(message) {
    busy = false;
    if (general) general.textContent = message;
  }

  f.addEventListener('click', (e) => {
    if (e.target.closest('[data-sc-next]')) {
      e.preventDefault();
      if (valid(steps[at])) go(at + 1);
    }
  });
  // A field fixed is cleared at once, not only at the next try.
  const recheck = (e) => {
    const el = e.target;
    if (el.name && el.hasAttribute('aria-invalid') && el.checkValidity()) mark(el.name, '');
  };
  f.addEventListener('input', recheck);
  f.addEventListener('change', recheck);
  f.addEventListener('submit', (e) => {
    e.preventDefault();
    if (busy || !valid(steps[at] || f)) return;
    // Enter in a field of an earlier step (implicit submission) moves on, as Next does.
    if (at < steps.length - 1) return go(at + 1);
    busy = true;
    if (general) general.textContent = '';
    submit(values()).then(([status, answer]) => {
      if (status === 200) {
        f.hidden = true;
        const shown = box.querySelectorAll('[data-sc-success]');
        shown.forEach((el) => (el.hidden = false));
        if (shown[0]) {
          shown[0].tabIndex = -1;
          shown[0].focus(); // read out, and the keyboard stays in the widget
        }
        done();
      } else if (status === 422 && answer.fields) {
        busy = false;
        for (const p of f.querySelectorAll('[data-sc-error]')) mark(p.getAttribute('data-sc-error'), '');
        for (const name in answer.fields) mark(name, String(answer.fields[name]));
        const bad = f.querySelector('[aria-invalid]');
        if (bad) go(Math.max(steps.indexOf(bad.closest('[data-sc-step]')), 0), bad);
      } else {
        fail(status === 429 ? 'Too many tries: please wait a minute.' : 'Sorry, that did not go through. Please try again.');
      }
    }, () => fail('No connection: please try again.'));
  });
}
