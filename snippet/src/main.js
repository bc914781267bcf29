// sitecue's tag. Paste `<script async src="/sc/cue.js" data-site="news"></script>`.
// Calls made before it loads are kept when the page defines the queue first:
//   window.sitecue = window.sitecue || function () { (sitecue.q = sitecue.q || []).push(arguments) };

import { pageContext, takeToken } from './context.js';
import { beacon, post, submitForm } from './transport.js';
import { watcher } from './triggers.js';
import { render } from './render.js';
import { antiFlicker, when } from './timing.js';
import { handoff } from './handoff.js';
import { reading } from './reading.js';

const script = document.currentScript;

function start() {
  const site = script.dataset.site;
  // The endpoints sit beside the script, wherever the site serves it: /sc/cue.js or
  // /sc/cue.<version>.js posts to /sc/v1/decide (sitecue serve --root-path /sc).
  const base = new URL('.', script.src).href;
  let token = takeToken(); // sent with the first decision only
  let identify; // a contact id from sitecue('identify', {id}): linked, never verified
  const queued = (window.sitecue && window.sitecue.q) || [];
  const seen = new Set(); // decision ids already scheduled in this page view
  const presented = new Set(); // ... and already on the page
  const waiting = new Map(); // rule -> its decision, for sitecue('show', rule)
  const inPage = new Map(); // rule -> close() of its inline or replace widget
  const take = reading(flush); // whole seconds of active reading not yet reported
  let reads = false; // some rule reads reading time: report it
  const unhide = antiFlicker(site, script.dataset.hide);
  let watched = null; // trigger names the server listens to; null until it answered
  const data = {}; // what the page set: sitecue('set', {cart_value: 520})
  let previewing = false; // a preview link's page view: nothing is reported
  let busy = false; // a decision is on its way
  let again = false; // ... and another was asked for meanwhile
  let dataRead = []; // the page-data keys some rule reads, as the server lists them
  let changed = []; // keys set since the last call
  let pending = [];
  let outbox = []; // events to /v1/events, sent together (see send)
  let consent;
  let timer = 0;
  let skew = 0; // the server's clock minus ours: events are dated by the server's clock
  let view = id();
  const triggers = watcher(fire);

  // One decision at a time: a trigger that fires while one is on its way waits for its
  // answer (and the state cookie it sets), or the same page view would be decided afresh. A
  // page view's first call, and the flush of a page being left, go at once.
  function decide(pageview, now) {
    if (busy && !pageview && !now) return (again = true);
    busy = true;
    const events = pending;
    pending = [];
    // `call` and each event's `id` let the server store a retried request only once.
    const page = pageContext();
    page.data = data;
    changed = [];
    const body = { site, page, events, token, identify, consent, view, pageview, call: id(), read: take() };
    token = undefined;
    post(base + 'v1/decide', body)
      .then((answer) => apply(answer, pageview))
      .catch(() => unhide())
      .finally(() => {
        busy = false;
        if (again) decide((again = false));
      });
  }

  function apply(answer, pageview) {
    skew = answer.now - Date.now() || 0;
    previewing = !!answer.preview; // nothing of a preview is reported, nor handed to analytics
    reads = answer.reading;
    // A new page view (an SPA route change) takes the last one's inline and replace widgets
    // off the page: those its rules win again are put back at once, the others stay gone.
    if (pageview) inPage.forEach((close) => close());
    watched = new Set(answer.triggers.map((t) => t.name));
    triggers.watch(answer.triggers);
    dataRead = answer.data || [];
    recheck(); // what was set while this answer was on its way
    for (const d of answer.decisions) {
      if (seen.has(d.id)) continue;
      seen.add(d.id);
      waiting.set(d.rule, d);
      when((d.show && d.show.after) || 'now', () => present(d));
    }
    unhide(answer.hide);
    // A preview link (?sc_preview=…): the panel is a script of its own, not part of the tag.
    if (previewing)
      document.head.append(Object.assign(document.createElement('script'), { src: base + 'preview.js', p: answer }));
  }

  function present(d) {
    if (presented.has(d.id)) return;
    presented.add(d.id);
    // A click on a product card (`data-sc-product`) names the product and the strategy.
    const report = (type, card = {}) => {
      send({ type, decision: d.id, rule: d.rule, variant: d.variant, product: valid(card.scProduct)[0], strategy: card.scStrategy });
      if (!previewing) handoff(type, d);
    };
    // A form taken (200) is `submit` for analytics; the server counts it as the conversion.
    const submit = (fields) =>
      submitForm(base + 'v1/forms', { site, decision: d.id, rule: d.rule, variant: d.variant, fields, id: id() }).then(
        (r) => (r[0] === 200 && handoff('submit', d), r),
      );
    const close = d.html !== null && render(d, report, submit);
    if (close && /^[ir]/.test(d.placement.type)) inPage.set(d.rule, close); // inline, replace
    // A control shows nothing but still counts as an impression.
    if (d.html === null || close) report('impression');
  }

  // The page is hidden or left: what it has not reported goes now, in a request that outlives
  // it (a click trigger on a link would be lost otherwise), with the reading time.
  function flush() {
    clearTimeout(timer);
    deliver();
    if (pending.length) decide(false, true);
    else if (reads && !previewing) {
      const read = take();
      if (read) beacon(base + 'v1/events', { site, read, call: id() });
    }
  }

  // The events of one moment go in one request: each answer rewrites the whole state cookie,
  // so two requests side by side (two widgets' impressions) would each undo the other's.
  function send(event) {
    if (previewing) return;
    event.at = Date.now() + skew;
    event.id = id();
    if (outbox.push(event) < 2) queueMicrotask(deliver);
  }

  function deliver() {
    while (outbox.length) beacon(base + 'v1/events', { site, events: outbox.splice(0, 50) });
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(() => decide(false), 50); // one request for a burst of triggers
  }

  // A key some rule reads was set: decide again, as after a trigger.
  function recheck() {
    if (changed.some((k) => dataRead.includes(k))) soon();
  }

  // An event, with the products it is about (an add-to-cart's, a purchase's lines): ids the
  // server would refuse are left out (it takes at most 50).
  function fire(name, value, ...ids) {
    ids = valid(ids);
    const event = { name, at: Date.now(), value, products: ids[0] && ids };
    if (watched === null || watched.has(name)) {
      pending.push(event); // a value that is not a number goes as null
      if (watched !== null) soon();
    } else send(Object.assign(event, { type: 'event' })); // a goal converts; anything else is logged
  }

  function run(args) {
    const [command, value, extra] = args;
    if (command === 'event' && typeof value === 'string') {
      const { value: v, product, products } = extra || {};
      fire(value, Math.abs(v) <= 1e9 ? +v : null, product, products); // what the server would refuse goes as null
    }
    else if (command === 'set' && value) {
      Object.assign(data, value);
      changed.push(...Object.keys(value));
      if (watched !== null) recheck();
    }
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
  addEventListener('pagehide', flush);
  queued.forEach(run);
  decide(true);
  spaPageViews(() => {
    view = id();
    triggers.reset();
    decide(true);
  });
}

// The product ids the server takes (at most 50), of an id, a list, or a list of both.
const valid = (ids) => [].concat(ids).flat().filter((p) => p === '' + p && /^[^\W_][\w.:/-]{0,63}$/.test(p)).slice(0, 50);

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
