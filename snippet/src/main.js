// sitecue's tag. Paste `<script async src="/sc/cue.js" data-site="news"></script>`.
// Calls made before it loads are kept when the page defines the queue first:
//   window.sitecue = window.sitecue || function () { (sitecue.q = sitecue.q || []).push(arguments) };

import { pageContext, takeToken } from './context.js';
import { beacon, post, submitForm } from './transport.js';
import { watcher } from './triggers.js';
import { render } from './render.js';
import { antiFlicker, when } from './timing.js';

const script = document.currentScript;

function start() {
  const site = script.dataset.site;
  const base = script.src.replace(/\/cue\.js([?#].*)?$/, '');
  let token = takeToken(); // sent with the first decision only
  let identify; // a contact id from sitecue('identify', {id}): linked, never verified
  const queued = (window.sitecue && window.sitecue.q) || [];
  const seen = new Set(); // decision ids already scheduled in this page view
  const presented = new Set(); // ... and already on the page
  const waiting = new Map(); // rule -> its decision, for sitecue('show', rule)
  const unhide = antiFlicker(site, script.dataset.hide);
  let watched = null; // trigger names the server listens to; null until it answered
  let pending = [];
  let consent;
  let timer = 0;
  let skew = 0; // the server's clock minus ours: events are dated by the server's clock
  let view = id();
  const triggers = watcher(fire);

  function decide(pageview) {
    const events = pending;
    pending = [];
    // `call` and each event's `id` let the server store a retried request only once.
    const page = pageContext();
    const body = { site, page, events, token, identify, consent, view, pageview, call: id() };
    token = undefined;
    post(base + '/v1/decide', body)
      .then(apply)
      .catch(() => unhide());
  }

  function apply(answer) {
    skew = answer.now - Date.now() || 0;
    watched = new Set(answer.triggers.map((t) => t.name));
    triggers.watch(answer.triggers);
    for (const d of answer.decisions) {
      if (seen.has(d.id)) continue;
      seen.add(d.id);
      waiting.set(d.rule, d);
      when((d.show && d.show.after) || 'now', () => present(d));
    }
    unhide(answer.hide);
    // A preview link (?sc_preview=…): the panel is a script of its own, not part of the tag.
    if (answer.preview)
      document.head.append(Object.assign(document.createElement('script'), { src: base + '/preview.js', p: answer }));
  }

  function present(d) {
    if (presented.has(d.id)) return;
    presented.add(d.id);
    const report = (type) => send({ type, decision: d.id, rule: d.rule, variant: d.variant });
    const submit = (fields) =>
      submitForm(base + '/v1/forms', { site, decision: d.id, rule: d.rule, variant: d.variant, fields, id: id() });
    // A control shows nothing but still counts as an impression.
    if (d.html === null || render(d, report, submit)) report('impression');
  }

  function send(event) {
    event.at = Date.now() + skew;
    event.id = id();
    beacon(base + '/v1/events', { site, events: [event] });
  }

  function fire(name) {
    if (watched === null || watched.has(name)) {
      pending.push({ name, at: Date.now() });
      if (watched !== null) {
        clearTimeout(timer);
        timer = setTimeout(() => decide(false), 50); // one request for a burst of triggers
      }
    } else send({ type: 'event', name }); // a goal converts; anything else is logged
  }

  function run(args) {
    const [command, value] = args;
    if (command === 'event' && typeof value === 'string') fire(value);
    else if (command === 'consent') {
      consent = !!value;
      if (watched !== null) decide(false); // store (or forget) the state now, not next page
    } else if (command === 'show' && waiting.has(value)) {
      present(waiting.get(value)); // now, whatever its timing said
    } else if (command === 'identify' && value && value.id) {
      identify = String(value.id);
      if (watched !== null) decide(false);
    }
  }

  window.sitecue = function () {
    try {
      run(arguments);
    } catch (e) {
      /* never break the host page */
    }
  };
  queued.forEach(run);
  decide(true);
  spaPageViews(() => {
    view = id();
    triggers.reset();
    decide(true);
  });
}

// A random id (three 32-bit numbers, seven base-36 digits each): for a page view, a call, an event.
function id() {
  const words = crypto.getRandomValues(new Uint32Array(3));
  return Array.from(words, (n) => (n + 2 ** 32).toString(36)).join('');
}

// A single-page app changes the URL without loading a page: each new path or query
// (pushState, replaceState, the back and forward buttons) is a page view of its own.
function spaPageViews(pageview) {
  let last = location.pathname + location.search;
  const check = () => {
    const now = location.pathname + location.search;
    if (now !== last) {
      last = now;
      pageview();
    }
  };
  for (const method of ['pushState', 'replaceState']) {
    const original = history[method];
    history[method] = function () {
      const result = original.apply(this, arguments);
      try {
        check();
      } catch (e) {
        /* never break the host page */
      }
      return result;
    };
  }
  addEventListener('popstate', check);
}

if (script && !window.__sitecueStarted) {
  window.__sitecueStarted = true;
  try {
    start();
  } catch (e) {
    /* never break the host page */
  }
}
