/* infra-mgr: the Power page, kept live.
 *
 * The server renders the whole page from the database (it reads fine without this file). This
 * script then subscribes to /api/v1/power/stream (server-sent events from the power poller's
 * LiveHub) and, within a second of a reading, changes the colours, states, gauges and readings
 * already on the page (the kW figures excepted: they come with the refresh below, together with the PUE
 * note that sums them, so the note always adds up to the cards); `event` items go to the events list (and to the timeline of an outage in
 * progress, through the refresh below). The data it starts from is the page's own JSON block. It computes no rule: each
 * device message carries the device's state, tone, load, gauges and autonomy as the server judged
 * them (power/views.py), with the chain nodes it colours and its site's state; this file only draws.
 *
 * What a message does not carry (PUE, the state of an outage, fuel autonomy) is refreshed from
 * /power/chain.json a few seconds after readings change, and at once after an event: that one
 * answer sets the banner, the sites, the cards, PUE and the Outages card (rendered by the server
 * from the same view as the rest, ``outages_html``), so no card can tell another story.
 * When the stream drops the page says "live updates paused", polls that JSON meanwhile and
 * reconnects; a device whose data grows older than its grace period (``grace_s``) takes the tone
 * the server gave for that case (``stale_tone``) even while the stream is down, so old data is
 * never shown as live, and the page asks the server for the rest.
 *
 * The Readings card charts any numeric reading of a device from /api/v1/power/series (see the
 * "readings chart" part below); its selection is kept in the page's URL.
 *
 * CSP: our own file only, no inline script or style; every text goes in with textContent.
 * `window.infraPower` exposes the state for the browser tests and for debugging from the console.
 */
(function () {
  'use strict';

  var dataEl = document.getElementById('power-data');
  if (!dataEl) { return; }

  function parse(id) {
    var el = document.getElementById(id);
    try { return JSON.parse(el ? el.textContent : '{}'); } catch (e) { return {}; }
  }

  var view = parse('power-data');
  var strings = parse('power-strings');
  var rules = view.rules || { badges: {} };
  var TONE_NAMES = ['ok', 'warning', 'critical', 'stale', 'unknown', 'none'];
  var BADGE_CLASSES = ['text-bg-success', 'text-bg-warning', 'text-bg-danger', 'text-bg-secondary', 'text-bg-light'];
  var DANGER_FLAGS = ['low_battery', 'low_fuel', 'overload', 'engine_fault', 'mains_failed'];
  var EVENTS_SHOWN = 15;
  var REFRESH_AFTER_MS = 3000;   // after readings changed: fetch what only the server computes
  var EVENT_REFRESH_MS = 250;    // after an event: soon (events of one reading arrive together)
  var POLL_PAUSED_MS = 2000;     // while the stream is down (critical devices' data is stale after 3 s)
  var POLL_OFF_MS = 30000;       // when the server has no live hub at all
  var CHART_EVERY_MS = 600000;
  var RETRY_MAX_MS = 30000;

  var devices = {};
  var nodes = {};
  var offsetMs = 0;   // server clock − browser clock, so data ages do not depend on this PC's clock

  var api = window.infraPower = {
    ready: false, live: 'connecting', updates: 0, events: 0, refreshes: 0, reconnects: 0, outageRenders: 0,
    devices: devices, nodes: nodes, source: null
  };

  /* ------------------------------------------------------------------ helpers */

  function t(key, params) {
    var text = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
    if (params) {
      Object.keys(params).forEach(function (name) { text = text.split('{' + name + '}').join(String(params[name])); });
    }
    return text;
  }

  function label(group, value) {
    var key = group + '.' + value;
    return Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : String(value);
  }

  function isNum(v) { return typeof v === 'number' && isFinite(v); }

  function fmtNum(v, digits) {
    if (!isNum(v)) { return ''; }
    if (digits === 0) { return String(Math.round(v)); }
    var s = v.toFixed(digits === undefined ? 1 : digits);
    return s.indexOf('.') >= 0 ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
  }

  function pad2(n) { return (n < 10 ? '0' : '') + n; }

  // Same shapes as routes._fmt_duration: 8.4 s, 2 min 05 s, 1 h 12 min, 3 d 4 h.
  function fmtDuration(seconds) {
    if (!isNum(seconds)) { return ''; }
    if (seconds < 60) { return t('dur.s', { n: fmtNum(Math.max(0, seconds), 1) }); }
    var total = Math.round(seconds);
    if (total < 3600) { return t('dur.min', { m: Math.floor(total / 60), s: pad2(total % 60) }); }
    if (total < 86400) { return t('dur.h', { h: Math.floor(total / 3600), m: pad2(Math.floor(total % 3600 / 60)) }); }
    return t('dur.d', { d: Math.floor(total / 86400), h: Math.floor(total % 86400 / 3600) });
  }

  function fmtIso(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? '' : d.toISOString().slice(0, 19).replace('T', ' ');
  }

  function kw(v) { return isNum(v) ? t('unit.kw', { n: fmtNum(v, 1) }) : ''; }
  function pct(v) { return isNum(v) ? t('unit.pct', { n: fmtNum(v, 0) }) : ''; }
  function hours(v) { return isNum(v) ? t('unit.h', { n: fmtNum(v, 1) }) : ''; }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function setText(root, selector, text) {
    var target = root ? root.querySelector(selector) : null;
    if (target && target.textContent !== text) { target.textContent = text; }
  }

  function setTone(node, tone) {
    if (!node) { return; }
    TONE_NAMES.forEach(function (name) { node.classList.remove('tone-' + name); });
    node.classList.add('tone-' + tone);
    node.setAttribute('data-tone', tone);
  }

  function setBadge(node, tone, text) {
    if (!node) { return; }
    BADGE_CLASSES.forEach(function (c) { node.classList.remove(c); });
    node.classList.add('text-bg-' + (rules.badges[tone] || 'secondary'));
    node.textContent = text;
  }

  function serverNow() { return Date.now() + offsetMs; }

  function syncClock(iso) {
    var ms = Date.parse(iso);
    if (!isNaN(ms)) { offsetMs = ms - Date.now(); }
  }

  function stateText(state, tone) { return tone === 'stale' ? t('pstate.stale') : label('pstate', state); }

  /* ------------------------------------------------------------------ devices */

  function ageText(dev) {
    if (!dev.last_ok) { return t('power.data_never'); }
    return t(dev.live ? 'power.data_age' : 'power.data_stale', { age: fmtDuration(dev.data_age_s) });
  }

  function renderAge(dev, card) {
    card = card || document.querySelector('.pdev[data-device="' + dev.id + '"]');
    if (!card) { return; }
    setText(card, '[data-role="age-text"]', ageText(dev));
    var badge = card.querySelector('[data-role="not-live"]');
    if (!dev.live && !badge) {
      badge = el('span', 'badge text-bg-light border', t('power.not_live'));
      badge.setAttribute('data-role', 'not-live');
      var age = card.querySelector('[data-role="age"]');
      age.insertBefore(document.createTextNode(' '), age.firstChild);
      age.insertBefore(badge, age.firstChild);
    } else if (dev.live && badge) {
      badge.parentNode.removeChild(badge);
    }
  }

  function renderDevice(dev) {
    var card = document.querySelector('.pdev[data-device="' + dev.id + '"]');
    if (card) {
      setTone(card, dev.tone);
      card.classList.toggle('not-live', !dev.live);
      card.setAttribute('data-state', dev.state);
      card.setAttribute('data-live', dev.live ? 'true' : 'false');
      setBadge(card.querySelector('[data-role="state"]'), dev.tone, stateText(dev.state, dev.tone));
      renderAge(dev, card);
      var message = card.querySelector('[data-role="message"]');
      if (message) { message.hidden = dev.live; }  // why it stopped answering, while it does not
      var values = dev.gauges || {};
      Array.prototype.forEach.call(card.querySelectorAll('[data-gauge]'), function (box) {
        var name = box.getAttribute('data-gauge');
        var v = values[name];
        setText(box, '[data-role="value"]', isNum(v) ? pct(v) : '—');
        var meter = box.querySelector('meter');
        if (meter) {
          if (isNum(v)) { meter.value = name === 'load' ? Math.min(v, 100) : v; } else { meter.removeAttribute('value'); }
          meter.textContent = isNum(v) ? pct(v) : '';
        }
        if (name === 'battery') {
          var h = values.battery_h;
          setText(box, '[data-role="extra"]', isNum(h) ? t('power.battery_autonomy', { h: hours(h) }) : t('power.autonomy_unknown'));
        } else if (name === 'fuel') {
          var fh = values.fuel_h;
          var fuelKey = values.fuel_at === 'rated' ? 'power.fuel_autonomy_rated' : 'power.fuel_autonomy';
          setText(box, '[data-role="extra"]', isNum(fh) ? t(fuelKey, { h: hours(fh) }) : t('power.autonomy_unknown'));
        }
      });
      setText(card, '[data-fact="power"]', isNum(dev.kw) ? kw(dev.kw) : '—');
      var engine = (dev.readings || {})['engine.state'];
      setText(card, '[data-fact="engine"]', engine ? label('engine', engine) : '—');
      var flagsBox = card.querySelector('[data-role="flags"]');
      if (flagsBox) {
        var shown = Array.prototype.map.call(flagsBox.querySelectorAll('[data-flag]'), function (f) {
          return f.getAttribute('data-flag');
        }).join(' ');
        if (shown !== (dev.flags || []).join(' ')) {
          flagsBox.textContent = '';
          (dev.flags || []).forEach(function (f) {
            var li = el('li');
            var b = el('span', 'badge text-bg-' + (DANGER_FLAGS.indexOf(f) >= 0 ? 'danger' : 'warning'), label('pflag', f));
            b.setAttribute('data-flag', f);
            li.appendChild(b);
            flagsBox.appendChild(li);
          });
        }
      }
    }
  }

  /* ------------------------------------------------------------------ chain */

  // A node without telemetry shows its rating, never as if it were a measured load.
  function isRated(n) {
    return n.device_id === null && n.kind !== 'utility' && !!n.capacity_kw && !isNum(n.kw) && !isNum(n.pct) &&
      !(n.derived_from && n.derived_from.length);
  }

  function nodeReading(n) {
    if (isNum(n.kw) && isNum(n.pct)) { return kw(n.kw) + ' · ' + pct(n.pct); }
    if (isNum(n.kw)) { return kw(n.kw); }
    if (isNum(n.pct)) { return pct(n.pct); }
    if (n.derived_from && n.derived_from.length) { return t('power.from_feeds'); }
    if (isRated(n)) { return t('power.node_rated', { kw: kw(n.capacity_kw) }); }  // a rating, said so
    if (n.device_id === null && n.kind !== 'utility') { return t('power.no_telemetry'); }
    return '';
  }

  // A node's live part as the server sent it (state, tone, live; kw and pct only from a refresh,
  // so the chain's figures are those of the cards and the PUE note beside them).
  function updateNode(fresh, fromStream) {
    var n = nodes[fresh.id];
    if (!n) { return; }
    ['state', 'tone', 'live', 'kw', 'pct'].forEach(function (k) {
      if (k in fresh && !(fromStream && NODE_REFRESH_ONLY.indexOf(k) >= 0)) { n[k] = fresh[k]; }
    });
    renderNode(n);
  }

  // A long name or reading is squeezed into its box rather than running over the next one.
  function fitTexts(g) {
    var width = (view.chain && view.chain.node_w ? view.chain.node_w : 140) - 8;
    Array.prototype.forEach.call(g.querySelectorAll('text'), function (txt) {
      txt.removeAttribute('textLength');
      txt.removeAttribute('lengthAdjust');
      if (typeof txt.getComputedTextLength === 'function' && txt.getComputedTextLength() > width) {
        txt.setAttribute('textLength', String(width));
        txt.setAttribute('lengthAdjust', 'spacingAndGlyphs');
      }
    });
  }

  function renderNode(n) {
    var g = document.querySelector('.pnode[data-node="' + n.id + '"]');
    var text = stateText(n.state, n.tone);
    if (g) {
      setTone(g, n.tone);
      g.setAttribute('data-state', n.state);
      setText(g, '[data-role="state"]', n.tone === 'none' ? label('pkind', n.kind) : text);
      setText(g, '[data-role="reading"]', nodeReading(n));
      setText(g, '[data-role="title"]', n.name + ' — ' + label('pkind', n.kind) + ' — ' + text +
              (n.derived_from && n.derived_from.length ? ' (' + t('power.from_feeds_help') + ')' : ''));
      fitTexts(g);
    }
    var li = document.querySelector('#power-chain-list li[data-node="' + n.id + '"]');
    if (li) {
      li.setAttribute('data-state', n.state);
      li.setAttribute('data-tone', n.tone);
      setBadge(li.querySelector('[data-role="state"]'), n.tone, text);
      setText(li, '[data-role="reading"]', nodeReading(n));
    }
    Array.prototype.forEach.call(document.querySelectorAll('.pedge[data-from="' + n.id + '"]'), function (p) {
      setTone(p, n.tone);
      p.classList.toggle('dead', n.state === 'failed' || n.state === 'off');
    });
  }

  /* ------------------------------------------------------------------ sites */

  function renderSite(site) {
    if (!site) { return; }
    var key = site.id === null || site.id === undefined ? '' : String(site.id);
    var box = document.querySelector('.power-site[data-site="' + key + '"]');
    if (!box) { return; }
    box.setAttribute('data-state', site.state);
    setTone(box, site.tone);
    setText(box, '[data-role="site-state"]', label('psite', site.state));
    var nl = box.querySelector('[data-role="site-not-live"]');
    if (nl) {
      nl.hidden = site.not_live === 0;
      nl.textContent = t('power.not_live_count', { n: site.not_live, total: site.devices });
    }
  }

  /* ------------------------------------------------------------------ PUE */

  function renderPue(p) {
    if (!p) { return; }
    var value = document.getElementById('pue-value');
    if (value) {
      value.textContent = isNum(p.pue) ? p.pue.toFixed(2) : '—';
      value.setAttribute('data-pue', isNum(p.pue) ? String(p.pue) : '');
    }
    var cat = document.getElementById('pue-category');
    if (cat) {
      cat.setAttribute('data-category', p.category ? String(p.category) : '');
      cat.textContent = p.category ? t('power.pue_category', { n: p.category, point: t('pue.cat' + p.category) })
        : t('power.pue_category_unknown');
    }
    var detail = document.getElementById('pue-detail');
    if (detail) {
      // facility = grid intake + on-site generation (the server's rule): both named while a generator runs
      var parts = {
        facility: kw(p.facility_kw), it: kw(p.it_kw), dcie: isNum(p.pue) ? t('unit.pct', { n: fmtNum(100 / p.pue, 0) }) : '',
        grid: kw(isNum(p.grid_kw) ? p.grid_kw : 0), generation: kw(p.generation_kw)
      };
      detail.textContent = !isNum(p.pue) ? t('power.pue_none')
        : t(isNum(p.generation_kw) ? 'power.pue_detail_sources' : 'power.pue_detail', parts);
    }
  }

  var SVG = 'http://www.w3.org/2000/svg';

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // Daily PUE as bars rising from 1.0 (the ideal), gridlines every 0.25; newest at the end of the
  // reading direction (right in English, left in Arabic).
  function drawPueChart(data) {
    var box = document.getElementById('pue-chart');
    if (!box) { return; }
    var days = (data && data.days) || [];
    var values = days.map(function (d) { return d.pue; }).filter(isNum);
    box.textContent = '';
    box.setAttribute('data-ready', 'true');
    box.setAttribute('data-days', String(days.length));
    if (!values.length) {
      // "no data" is said once: below, where the table would be, when the page said it already
      box.hidden = !!document.getElementById('pue-table-empty');
      if (!box.hidden) { box.appendChild(el('p', 'small text-body-secondary mb-0', t('power.pue_chart_empty'))); }
      return;
    }
    box.hidden = false;
    var W = 360, H = 170, left = 34, right = 8, top = 16, bottom = 24;
    var rtl = document.documentElement.dir === 'rtl';
    var maxV = Math.max(1.5, Math.ceil(Math.max.apply(null, values) * 4 + 0.5) / 4);
    var y = function (v) { return top + (H - top - bottom) * (1 - (v - 1) / (maxV - 1)); };
    // The plot area; in Arabic the value labels sit on the right and the days run right to left.
    var px0 = rtl ? right : left;
    var px1 = rtl ? W - left : W - right;
    var slot = (px1 - px0) / days.length;
    var slotStart = function (i) { return rtl ? px1 - (i + 1) * slot : px0 + i * slot; };
    var chart = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: '100%', class: 'pue-svg', 'aria-hidden': 'true' });
    for (var g = 1; g <= maxV + 1e-9; g += 0.25) {
      var gy = y(g);
      chart.appendChild(svg('line', { x1: px0, x2: px1, y1: gy, y2: gy, class: g === 1 ? 'pue-axis' : 'pue-grid' }));
      chart.appendChild(svg('text', { x: rtl ? px1 + 4 : px0 - 4, y: gy + 4, 'text-anchor': rtl ? 'start' : 'end',
                                       class: 'pue-tick', direction: 'ltr' }, g.toFixed(2)));
    }
    days.forEach(function (d, i) {
      var x0 = slotStart(i);
      var cx = x0 + slot / 2;
      if (isNum(d.pue)) {
        var barTop = y(Math.min(d.pue, maxV));
        var bar = svg('rect', { x: x0 + slot * 0.18, y: barTop, width: slot * 0.64, height: Math.max(1, y(1) - barTop),
                                class: 'pue-bar', 'data-day': d.day, 'data-pue': d.pue });
        bar.appendChild(svg('title', {}, t('power.pue_day', { day: d.day, pue: d.pue.toFixed(2) })));
        chart.appendChild(bar);
        if (days.length <= 16) {
          chart.appendChild(svg('text', { x: cx, y: barTop - 3, 'text-anchor': 'middle', class: 'pue-value' }, d.pue.toFixed(2)));
        }
      }
      if ((days.length - 1 - i) % Math.ceil(days.length / 7) === 0) {  // evenly spaced, the newest always
        chart.appendChild(svg('text', { x: cx, y: H - 8, 'text-anchor': 'middle', class: 'pue-tick', direction: 'ltr' },
                              d.day.slice(5)));
      }
    });
    box.appendChild(chart);
    var table = document.getElementById('pue-table-details');
    if (table) { table.open = false; }
  }

  function loadChart() {
    var box = document.getElementById('pue-chart');
    if (!box) { return; }
    fetch(box.getAttribute('data-src'), { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (resp) { if (!resp.ok) { throw new Error('HTTP ' + resp.status); } return resp.json(); })
      .then(drawPueChart)
      .catch(function (err) { if (window.console) { window.console.warn('power: PUE chart', err); } });
  }

  /* ------------------------------------------------------------------ readings chart */

  // Any numeric reading of a device over a range, from /api/v1/power/series: the average as a line,
  // with the min–max band when the points are roll-ups. A step longer than 3× the resolution (or 3×
  // the median step of raw samples) breaks the line and is shaded: missing data is never drawn over.
  // The selection lives in the URL (?chart_device=&chart_reading=&chart_range=), so a chart can be
  // linked and survives a reload; short ranges are redrawn every 10 s.
  var chartData = parse('power-chart');
  var CHART_LIVE_MS = 10000;
  var GAP_FACTOR = 3;
  var LRI = '\u2066', PDI = '\u2069';  // keep a number in one piece inside Arabic text
  var chart = api.chart = {
    device: null, reading: null, range: null, points: 0, segments: 0, gaps: 0, resolution: null, unit: '',
    ready: false, loads: 0, error: null
  };
  var chartSeq = 0;
  var chartTimer = null;

  function chartDevice(id) {
    return (chartData.devices || []).filter(function (d) { return String(d.id) === String(id); })[0] || null;
  }

  function chartReading() {
    var dev = chartDevice(chart.device);
    return dev ? dev.readings.filter(function (r) { return r.name === chart.reading; })[0] || null : null;
  }

  function chartRange() { return (chartData.ranges || {})[chart.range] || { seconds: 3600, max_points: 720, live: true }; }

  // The device's readings as options; keeps the reading asked for when the device has it.
  function fillReadings(select, dev, wanted) {
    var list = dev ? dev.readings : [];
    var names = list.map(function (r) { return r.name; });
    select.textContent = '';
    list.forEach(function (r) {
      var o = el('option', null, r.text);
      o.value = r.name;
      o.setAttribute('data-unit', r.unit);
      select.appendChild(o);
    });
    select.disabled = !list.length;
    var pick = names.indexOf(wanted) >= 0 ? wanted : (names.indexOf('battery.charge') >= 0 ? 'battery.charge'
      : (names[0] || ''));
    select.value = pick;
    return pick || null;
  }

  function seriesUrl(startMs, endMs) {
    return '/api/v1/power/series?device_id=' + encodeURIComponent(chart.device) +
      '&name=' + encodeURIComponent(chart.reading) +
      '&start=' + encodeURIComponent(new Date(startMs).toISOString()) +
      '&end=' + encodeURIComponent(new Date(endMs).toISOString()) +
      '&max_points=' + chartRange().max_points;
  }

  // The selection into this page's URL and into the language switch, so both keep it.
  function keepSelection() {
    var set = function (url) {
      if (chart.device !== null) { url.searchParams.set('chart_device', String(chart.device)); }
      if (chart.reading) { url.searchParams.set('chart_reading', chart.reading); } else { url.searchParams.delete('chart_reading'); }
      url.searchParams.set('chart_range', chart.range);
      return url.pathname + url.search + url.hash;
    };
    try {
      window.history.replaceState(window.history.state, '', set(new URL(window.location.href)));
      var toggle = document.getElementById('lang-toggle');
      if (toggle) { toggle.setAttribute('href', set(new URL(toggle.getAttribute('href'), window.location.href))); }
    } catch (e) { if (window.console) { window.console.warn('power: chart URL', e); } }
  }

  var chartTime = window.infraChartTime;
  var hhmm = chartTime.hhmm, mmdd = chartTime.mmdd, localTime = chartTime.localTime, timeTicks = chartTime.timeTicks;

  // Round value ticks (1, 2, 5 × 10ⁿ) covering [lo, hi], and the decimals their labels need.
  function valueTicks(lo, hi) {
    if (hi - lo < 1e-9) { var padV = Math.max(Math.abs(hi) * 0.05, 1); lo -= padV; hi += padV; }
    var raw = (hi - lo) / 4;
    var mag = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var step = [1, 2, 2.5, 5, 10].map(function (m) { return m * mag; }).filter(function (v) { return v >= raw; })[0];
    var first = Math.floor(lo / step) * step, last = Math.ceil(hi / step) * step;
    var ticks = [];
    for (var v = first; v <= last + step / 2; v += step) { ticks.push(Math.round(v / step) * step); }
    var digits = 0;
    while (digits < 6 && Math.abs(Math.round(step * Math.pow(10, digits)) - step * Math.pow(10, digits)) > 1e-6) { digits += 1; }
    return { ticks: ticks, lo: first, hi: last, digits: digits };
  }

  function valueText(v, digits, reading) {
    var n = fmtNum(v, digits === 0 ? 0 : digits);
    if (!reading || reading.unit === 'count') { return n; }
    return t('power.chart_tick', { n: LRI + n + PDI, unit: reading.unit_text });
  }

  // The largest step between two points that is not a gap: 3× the roll-up resolution, or 3× the
  // median step of raw samples (which come every 1–5 s depending on the device).
  function gapLimit(pts, res) {
    if (res > 0) { return GAP_FACTOR * res * 1000; }
    var steps = [];
    for (var i = 1; i < pts.length; i++) { steps.push(pts[i][0] - pts[i - 1][0]); }
    if (!steps.length) { return Infinity; }
    steps.sort(function (a, b) { return a - b; });
    return GAP_FACTOR * steps[Math.floor(steps.length / 2)];
  }

  function chartMessage(box, key) {
    box.textContent = '';
    box.appendChild(el('p', 'small text-body-secondary fst-italic mb-0 p-2 empty-state', t(key)));
  }

  function drawReadings(data, startMs, endMs) {
    var box = document.getElementById('reading-chart');
    var summary = document.getElementById('reading-chart-summary');
    var legend = document.getElementById('reading-chart-legend');
    if (!box) { return; }
    var reading = chartReading();
    var dev = chartDevice(chart.device);
    var res = data && isNum(data.resolution_s) ? data.resolution_s : 0;
    var pts = ((data && data.points) || []).filter(function (p) { return isNum(p[0]) && isNum(p[2]); });
    chart.points = pts.length;
    chart.resolution = res;
    chart.unit = data ? data.unit || '' : '';
    chart.error = null;
    if (summary) { summary.textContent = ''; }
    box.setAttribute('data-points', String(pts.length));
    if (!pts.length) {
      chart.segments = 0;
      chart.gaps = 0;
      chartMessage(box, reading ? 'power.chart_empty' : 'power.chart_no_readings');
      if (legend) { legend.hidden = true; }
      return;
    }

    // Split at the gaps.
    var limit = gapLimit(pts, res);
    var half = res * 500;  // a roll-up is drawn at the middle of its bucket
    var segments = [[pts[0]]];
    var gaps = [];
    for (var i = 1; i < pts.length; i++) {
      if (pts[i][0] - pts[i - 1][0] > limit) {
        gaps.push([pts[i - 1][0] + half, pts[i][0] + half]);
        segments.push([]);
      }
      segments[segments.length - 1].push(pts[i]);
    }
    var lastTs = pts[pts.length - 1][0];
    var silentEnd = endMs - lastTs > limit + res * 1000;  // the data stopped before now
    chart.segments = segments.length;
    chart.gaps = gaps.length;

    var W = 720, H = 256, yAxisW = 70, side = 12, top = 10, bottom = 40;
    var rtl = document.documentElement.dir === 'rtl';
    var px0 = rtl ? side : yAxisW;
    var px1 = rtl ? W - yAxisW : W - side;
    var py0 = top, py1 = H - bottom;
    var x = function (ms) {
      var f = Math.max(0, Math.min(1, (ms - startMs) / (endMs - startMs)));
      return rtl ? px1 - f * (px1 - px0) : px0 + f * (px1 - px0);
    };
    var lo = Infinity, hi = -Infinity;
    pts.forEach(function (p) {
      lo = Math.min(lo, res > 0 && isNum(p[1]) ? p[1] : p[2]);
      hi = Math.max(hi, res > 0 && isNum(p[3]) ? p[3] : p[2]);
    });
    var scale = valueTicks(lo, hi);
    var y = function (v) { return py1 - (py1 - py0) * (v - scale.lo) / (scale.hi - scale.lo); };
    var f1 = function (v) { return v.toFixed(1); };

    var chartSvg = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: '100%', class: 'rc-svg', role: 'img',
                                'aria-label': t('power.chart_aria', { reading: reading ? reading.text : chart.reading,
                                                                      device: dev ? dev.name : '' }) });
    // Gaps first (under everything): the shaded stretches without data.
    var shade = function (a, b, cls) {
      var xa = x(a), xb = x(b);
      var r = svg('rect', { x: Math.min(xa, xb), y: py0, width: Math.max(1, Math.abs(xb - xa)), height: py1 - py0,
                            class: cls, 'data-from': a, 'data-to': b });
      r.appendChild(svg('title', {}, t('power.chart_gap_title', { from: localTime(a, true), to: localTime(b, true) })));
      chartSvg.appendChild(r);
    };
    gaps.forEach(function (g) { shade(g[0], g[1], 'rc-gap'); });
    if (silentEnd) { shade(lastTs + half, endMs, 'rc-gap rc-gap-end'); }

    scale.ticks.forEach(function (v) {
      var gy = y(v);
      chartSvg.appendChild(svg('line', { x1: px0, x2: px1, y1: gy, y2: gy, class: 'rc-grid' }));
      chartSvg.appendChild(svg('text', { x: rtl ? px1 + 4 : px0 - 4, y: gy + 4, 'text-anchor': 'end',
                                         direction: rtl ? 'rtl' : 'ltr', class: 'rc-ytick', 'data-value': v },
                               valueText(v, scale.digits, reading)));
    });
    timeTicks(startMs, endMs).forEach(function (tk) {
      var tx = x(tk.ms);
      chartSvg.appendChild(svg('line', { x1: tx, x2: tx, y1: py0, y2: py1, class: 'rc-grid rc-grid-time' }));
      chartSvg.appendChild(svg('text', { x: tx, y: py1 + 16, 'text-anchor': 'middle', direction: 'ltr', class: 'rc-xtick',
                                         'data-ts': tk.ms }, tk.text));
    });
    // The time axis says what it is, in the page's language, and which way it runs (oldest at the
    // start of the reading direction: left in English, right in Arabic).
    chartSvg.appendChild(svg('text', { x: (px0 + px1) / 2, y: H - 4, 'text-anchor': 'middle', direction: rtl ? 'rtl' : 'ltr',
                                       class: 'rc-xlabel' }, t('power.chart_time_axis')));
    chartSvg.appendChild(svg('line', { x1: px0, x2: px1, y1: py1, y2: py1, class: 'rc-axis' }));

    segments.forEach(function (seg, n) {
      var g = svg('g', { class: 'rc-segment', 'data-segment': n, 'data-points': seg.length,
                         'data-from': seg[0][0], 'data-to': seg[seg.length - 1][0] });
      if (res > 0) {
        var upper = seg.map(function (p) { return f1(x(p[0] + half)) + ' ' + f1(y(isNum(p[3]) ? p[3] : p[2])); });
        var lower = seg.slice().reverse().map(function (p) { return f1(x(p[0] + half)) + ' ' + f1(y(isNum(p[1]) ? p[1] : p[2])); });
        g.appendChild(svg('path', { d: 'M' + upper.concat(lower).join(' L') + ' Z', class: 'rc-band' }));
      }
      if (seg.length === 1) {
        g.appendChild(svg('circle', { cx: f1(x(seg[0][0] + half)), cy: f1(y(seg[0][2])), r: 2, class: 'rc-dot' }));
      } else {
        g.appendChild(svg('path', { d: 'M' + seg.map(function (p) { return f1(x(p[0] + half)) + ' ' + f1(y(p[2])); }).join(' L'),
                                    class: 'rc-line' }));
      }
      chartSvg.appendChild(g);
    });
    box.textContent = '';
    box.appendChild(chartSvg);

    if (legend) {
      legend.hidden = false;
      legend.querySelector('[data-legend="band"]').hidden = !(res > 0);
      legend.querySelector('[data-legend="gap"]').hidden = !(gaps.length || silentEnd);
    }
    if (summary) {
      var last = pts[pts.length - 1];
      var parts = [t('power.chart_summary', { res: t('power.chart_res_' + (res > 0 ? res : 'raw')), n: pts.length })];
      if (gaps.length) { parts.push(t('power.chart_gaps', { n: gaps.length })); }
      parts.push(t('power.chart_latest', { value: valueText(last[2], Math.min(2, scale.digits + 1), reading),
                                            time: LRI + localTime(last[0], endMs - startMs > 86400000) + PDI }));
      summary.textContent = parts.join(' · ');
    }
  }

  function loadReadings() {
    var box = document.getElementById('reading-chart');
    if (!box) { return; }
    var seq = ++chartSeq;
    var link = document.getElementById('reading-chart-json');
    if (!chart.device || !chart.reading) {
      drawReadings(null, 0, 1);
      chart.ready = true;
      box.setAttribute('data-ready', 'true');
      return;
    }
    var endMs = serverNow();
    var startMs = endMs - chartRange().seconds * 1000;
    var url = seriesUrl(startMs, endMs);
    if (link) { link.href = url; }
    box.setAttribute('data-src', url);
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (resp) {
        if (resp.status === 401) { signedOut(); }
        if (!resp.ok) { throw new Error('HTTP ' + resp.status); }
        return resp.json();
      })
      .then(function (data) {
        if (seq !== chartSeq) { return; }  // the selection changed meanwhile
        drawReadings(data, startMs, endMs);
        chart.loads += 1;
        chart.ready = true;
        box.setAttribute('data-ready', 'true');
      })
      .catch(function (err) {
        if (seq !== chartSeq) { return; }
        chart.error = String(err);
        var summary = document.getElementById('reading-chart-summary');
        if (summary) { summary.textContent = t('power.chart_error'); }
        if (window.console) { window.console.warn('power: readings chart', err); }
      });
  }

  function scheduleReadings() {
    if (chartTimer) { window.clearInterval(chartTimer); chartTimer = null; }
    if (chartRange().live) {
      chartTimer = window.setInterval(function () { if (!document.hidden) { loadReadings(); } }, CHART_LIVE_MS);
    }
  }

  function readChartForm() {
    var devSel = document.getElementById('chart-device');
    var readSel = document.getElementById('chart-reading');
    var rangeSel = document.getElementById('chart-range');
    chart.device = devSel && devSel.value ? Number(devSel.value) : null;
    chart.reading = readSel && !readSel.disabled && readSel.value ? readSel.value : null;
    chart.range = rangeSel ? rangeSel.value : '1h';
  }

  function chartChanged() {
    readChartForm();
    chart.ready = false;
    var box = document.getElementById('reading-chart');
    if (box) { box.setAttribute('data-ready', 'false'); }
    keepSelection();
    loadReadings();
    scheduleReadings();
  }

  function initChart() {
    var form = document.getElementById('chart-form');
    if (!form) { return; }
    var nojs = document.getElementById('reading-chart-nojs');
    if (nojs) { nojs.hidden = true; }
    var submit = document.getElementById('chart-submit');
    if (submit) { submit.hidden = true; }
    var devSel = document.getElementById('chart-device');
    var readSel = document.getElementById('chart-reading');
    devSel.addEventListener('change', function () {
      fillReadings(readSel, chartDevice(devSel.value), chart.reading);
      chartChanged();
    });
    readSel.addEventListener('change', chartChanged);
    document.getElementById('chart-range').addEventListener('change', chartChanged);
    form.addEventListener('submit', function (ev) { ev.preventDefault(); chartChanged(); });
    readChartForm();  // as the server chose it (from the URL, or the defaults)
    loadReadings();
    scheduleReadings();
  }

  /* ------------------------------------------------------------------ events */

  function addEvent(item) {
    var list = document.getElementById('power-events');
    if (!list) { return; }
    var li = el('li', 'mb-2 power-event-new');
    li.setAttribute('data-kind', item.kind || '');
    var time = el('bdi', 'text-body-secondary', fmtIso(item.time));
    time.dir = 'ltr';
    li.appendChild(time);
    li.appendChild(document.createTextNode(' '));
    var sev = el('span', 'badge text-bg-' + ({ warning: 'warning', critical: 'danger' }[item.severity] || 'secondary'),
                 label('severity', item.severity));
    li.appendChild(sev);
    li.appendChild(document.createTextNode(' '));
    li.appendChild(el('strong', null, label('pev', String(item.kind || '').replace(/^power\./, ''))));
    if (item.device) {
      li.appendChild(document.createTextNode(' · '));
      var dev = el('bdi', null, item.device);
      dev.dir = 'ltr';
      li.appendChild(dev);
    }
    // the sentence comes with the refresh this event triggers (events_html), in the page's
    // language: the stream carries only the stored English message
    list.insertBefore(li, list.firstChild);
    while (list.children.length > EVENTS_SHOWN) { list.removeChild(list.lastChild); }
    var empty = document.getElementById('power-events-empty');
    if (empty) { empty.hidden = true; }
  }

  // An event changes what the server knows of outages (opened, a phase reached, closed): the
  // banner, the Outages card and the timeline are fetched together at once, so they never disagree.
  function onEvent(item) {
    api.events += 1;
    addEvent(item);
    scheduleRefresh(EVENT_REFRESH_MS);
  }

  /* ------------------------------------------------------------------ device readings */

  var MESSAGE_ONLY = ['type', 'time', 'nodes', 'site'];
  // The kW figures add up in the PUE note (IT = the sum of the IT cards), so they change only
  // with the refresh that also brings the note: a reading's kW shows with the next refresh.
  var REFRESH_ONLY = ['kw'];
  var NODE_REFRESH_ONLY = ['kw', 'pct'];

  function onDevice(item) {
    var dev = devices[item.id];
    if (!dev) { return; }
    api.updates += 1;
    api.lastItem = item;
    if (item.time) { syncClock(item.time); }
    Object.keys(item).forEach(function (k) {
      if (MESSAGE_ONLY.indexOf(k) < 0 && REFRESH_ONLY.indexOf(k) < 0) { dev[k] = item[k]; }
    });
    renderDevice(dev);
    (item.nodes || []).forEach(function (n) { updateNode(n, true); });
    renderSite(item.site);
    scheduleRefresh();
  }

  // Every second: data ages, and a device silent for longer than its grace period turns stale.
  function tick() {
    var now = serverNow();
    var changed = false;
    Object.keys(devices).forEach(function (id) {
      var d = devices[id];
      if (!d.last_ok) { return; }
      d.data_age_s = Math.max(0, (now - Date.parse(d.last_ok)) / 1000);
      if (d.live && d.data_age_s > d.grace_s) {
        d.live = false;
        d.state = 'unknown';
        d.tone = d.stale_tone;
        renderDevice(d);
        Object.keys(nodes).forEach(function (nid) {  // the device's own nodes show what it shows
          if (nodes[nid].device_id === d.id) { updateNode({ id: nodes[nid].id, state: d.state, tone: d.tone, live: false }, true); }
        });
        changed = true;
      } else {
        renderAge(d);
      }
    });
    if (changed) { refresh(); }  // the sites and feeds as the server now judges them
  }

  /* ------------------------------------------------------------------ refresh from the server */

  function applyView(data) {
    if (data.time) { syncClock(data.time); }
    (data.devices || []).forEach(function (fresh) {
      var dev = devices[fresh.id];
      if (!dev) { return; }  // added since the page loaded: a reload shows it
      if (dev.last_ok && fresh.last_ok && Date.parse(fresh.last_ok) < Date.parse(dev.last_ok)) {
        dev.gauges = fresh.gauges;  // the stream is ahead of this answer: keep its readings
        dev.kw = fresh.kw;          // but the kW is this answer's, the one its PUE note sums
      } else {
        Object.assign(dev, fresh);
      }
      renderDevice(dev);
    });
    (data.nodes || []).forEach(function (n) { updateNode(n, false); });
    (data.sites || []).forEach(renderSite);
    renderPue(data.pue);
    renderOutages(data.outages_html);
    renderEvents(data.events_html);
    var banner = document.getElementById('power-outage-open');
    if (banner) {
      var open = data.open_outage;
      banner.hidden = !open;
      if (open) {
        var a = banner.querySelector('a');
        a.href = '/power?outage=' + open.id + '#outage-detail';
        a.textContent = t('power.outage_open', { time: fmtIso(open.started_at).slice(0, 16) });
      }
    }
  }

  // The Outages card as the server rendered it from the same answer as the banner (the outage
  // chosen in the URL stays chosen; otherwise the newest, so a new outage shows as it opens).
  function renderOutages(html) {
    var body = document.getElementById('power-outages-body');
    if (!body || typeof html !== 'string') { return; }
    var tpl = document.createElement('template');
    tpl.innerHTML = html;
    var fresh = tpl.content.querySelector('#power-outages-body');
    if (!fresh) { return; }
    if (fresh.isEqualNode(body)) { return; }  // nothing changed: leave what the reader opened
    body.replaceWith(fresh);
    api.outageRenders += 1;
  }

  // The events card's items as the server said them in the page's language.
  function renderEvents(html) {
    var list = document.getElementById('power-events');
    if (!list || typeof html !== 'string') { return; }
    var tpl = document.createElement('template');
    tpl.innerHTML = html;
    if (!tpl.content.querySelector('li')) { return; }
    list.replaceChildren(tpl.content);
    var empty = document.getElementById('power-events-empty');
    if (empty) { empty.hidden = true; }
  }

  function chainUrl() {
    var chosen = new URLSearchParams(window.location.search).get('outage');
    return '/power/chain.json' + (chosen ? '?outage=' + encodeURIComponent(chosen) : '');
  }

  var refreshTimer = null;
  var refreshing = false;
  var refreshAgain = false;

  function refresh() {
    if (refreshTimer) { window.clearTimeout(refreshTimer); }
    refreshTimer = null;
    if (refreshing) { refreshAgain = true; return; }  // once more when this answer is in
    refreshing = true;
    fetch(chainUrl(), { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (resp) {
        if (resp.status === 401) { signedOut(); }
        if (!resp.ok) { throw new Error('HTTP ' + resp.status); }
        return resp.json();
      })
      .then(function (data) { api.refreshes += 1; applyView(data); })
      .catch(function (err) { if (window.console) { window.console.warn('power: refresh', err); } })
      .then(function () {
        refreshing = false;
        if (refreshAgain) { refreshAgain = false; scheduleRefresh(EVENT_REFRESH_MS); }
      });
  }

  function scheduleRefresh(afterMs) {
    if (!refreshTimer) { refreshTimer = window.setTimeout(refresh, afterMs === undefined ? REFRESH_AFTER_MS : afterMs); }
  }

  /* ------------------------------------------------------------------ the stream */

  var liveEl = document.getElementById('power-live');
  var LIVE_BADGE = { on: 'text-bg-success', paused: 'text-bg-warning', off: 'text-bg-secondary',
                     connecting: 'text-bg-secondary', signed_out: 'text-bg-danger' };
  var LIVE_TEXT = { on: 'power.live_on', paused: 'power.live_paused', off: 'power.live_off',
                    connecting: 'power.live_connecting', signed_out: 'power.signed_out' };

  function setLive(mode) {
    api.live = mode;
    document.body.classList.toggle('power-paused', mode === 'paused');
    var asOf = document.getElementById('power-asof');
    if (asOf) { asOf.hidden = true; }
    if (!liveEl) { return; }
    liveEl.hidden = false;
    Object.keys(LIVE_BADGE).forEach(function (k) { liveEl.classList.remove(LIVE_BADGE[k]); });
    liveEl.classList.add(LIVE_BADGE[mode]);
    liveEl.setAttribute('data-live', mode);
    liveEl.textContent = t(LIVE_TEXT[mode]);
  }

  var pollTimer = null;
  var retryMs = 2000;

  function startPolling(every) {
    if (!pollTimer) { pollTimer = window.setInterval(refresh, every); }
  }

  function stopPolling() {
    if (pollTimer) { window.clearInterval(pollTimer); pollTimer = null; }
  }

  // The session ended (sign-out elsewhere, expiry): stop asking, and say what to do.
  function signedOut() {
    stopPolling();
    if (api.source) { api.source.close(); api.source = null; }
    setLive('signed_out');
  }

  function connect() {
    if (api.live === 'signed_out') { return; }
    var es = new window.EventSource('/api/v1/power/stream');
    api.source = es;
    es.addEventListener('open', function () {
      var wasPaused = api.live === 'paused';
      setLive('on');
      retryMs = 2000;
      stopPolling();
      if (wasPaused) { refresh(); }  // catch up on what happened while the stream was down
    });
    es.addEventListener('device', function (ev) {
      try { onDevice(JSON.parse(ev.data)); } catch (e) { if (window.console) { window.console.warn('power:', e); } }
    });
    es.addEventListener('event', function (ev) {
      try { onEvent(JSON.parse(ev.data)); } catch (e) { if (window.console) { window.console.warn('power:', e); } }
    });
    es.addEventListener('error', function () {
      setLive('paused');
      startPolling(POLL_PAUSED_MS);
      if (es.readyState === window.EventSource.CLOSED) {
        // The browser gave up (the server answered an error): try again ourselves, backing off.
        api.source = null;
        api.reconnects += 1;
        window.setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      }
    });
  }

  /* ------------------------------------------------------------------ start */

  syncClock(view.time);
  (view.devices || []).forEach(function (d) { devices[d.id] = d; });
  (view.nodes || []).forEach(function (n) { nodes[n.id] = n; });
  Array.prototype.forEach.call(document.querySelectorAll('.pnode'), fitTexts);
  loadChart();
  window.setInterval(loadChart, CHART_EVERY_MS);
  initChart();
  window.setInterval(tick, 1000);
  if (view.live_updates && typeof window.EventSource === 'function') {
    setLive('connecting');
    connect();
  } else {
    setLive('off');
    startPolling(POLL_OFF_MS);
  }
  api.ready = true;
}());
