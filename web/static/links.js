/* infra-mgr: the Links page (branches ranked by their uplinks' health) and one uplink's charts.
 *
 * Links page: the table, the counts and the filter are the server's (/links/audit.json renders
 * the same table template the page includes, in the page's language); this file keeps them fresh
 * every 30 s and applies the filter without a reload, keeping it in the URL so a refresh or a
 * shared link shows the same rows. Without JavaScript the filter is a plain form.
 *
 * Uplink page: draws, as SVG, the traffic in and out with the port's speed, errors and discards
 * per second, and a status timeline built from the flap history, over the range in the URL. Time
 * runs in the reading direction (left to right in English, right to left in Arabic); numbers keep
 * their own direction inside Arabic text. Empty ranges and never-polled uplinks say so in words.
 *
 * The CSP allows our own files only: no inline script or style; strings come from the JSON data
 * block #links-strings and data is put in the page with textContent. `window.infraLinks` exposes
 * what was drawn, for the browser tests and for anyone debugging from the console.
 */
(function () {
  'use strict';

  var stringsEl = document.getElementById('links-strings');
  var strings = {};
  try { strings = JSON.parse(stringsEl ? stringsEl.textContent : '{}'); } catch (e) { strings = {}; }
  var LRI = '\u2066';
  var PDI = '\u2069';
  var SVG_NS = 'http://www.w3.org/2000/svg';
  var GAP_FACTOR = 3;
  var api = window.infraLinks = { loads: 0, state: null, ranked: [], chart: { ready: false, loads: 0 } };

  function t(key, params) {
    var text = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
    if (params) {
      Object.keys(params).forEach(function (name) { text = text.split('{' + name + '}').join(String(params[name])); });
    }
    return text;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function isNum(v) { return typeof v === 'number' && isFinite(v); }
  var chartTime = window.infraChartTime;
  var pad2 = chartTime.pad2, hhmm = chartTime.hhmm, mmdd = chartTime.mmdd, localTime = chartTime.localTime;
  function fmtNum(v, digits) {
    var s = v.toFixed(digits);
    return digits ? s.replace(/\.?0+$/, '') : s;
  }
  function iso(n) { return LRI + n + PDI; }
  var FSI = '\u2068';
  // A time as the server writes it (UTC, labelled), isolated so it reads left to right in Arabic.
  function utcText(ms) {
    var d = new Date(ms);
    return FSI + d.getUTCFullYear() + '-' + pad2(d.getUTCMonth() + 1) + '-' + pad2(d.getUTCDate()) + ' ' +
      pad2(d.getUTCHours()) + ':' + pad2(d.getUTCMinutes()) + ' UTC' + PDI;
  }

  // The page's address with one parameter changed, kept in the history entry and in the language
  // switch's link, so a reload, a shared link or the other language shows the same selection.
  function keepParam(name, value) {
    var params = new URLSearchParams(window.location.search);
    params.delete('lang');
    if (value) { params.set(name, value); } else { params.delete(name); }
    var q = params.toString();
    window.history.replaceState(null, '', window.location.pathname + (q ? '?' + q : ''));
    var toggle = document.getElementById('lang-toggle');
    if (toggle) {
      var href = new URL(toggle.getAttribute('href'), window.location.href);
      if (value) { href.searchParams.set(name, value); } else { href.searchParams.delete(name); }
      toggle.setAttribute('href', href.pathname + href.search);
    }
  }

  /* ================================================================== Links page */

  var tableBox = document.getElementById('links-table-box');
  if (tableBox) { linksPage(); }

  function linksPage() {
    var select = document.getElementById('links-state');
    var apply = document.getElementById('links-apply');
    var status = document.getElementById('links-status');
    var summary = document.getElementById('links-summary');
    var every = Number(tableBox.getAttribute('data-refresh-s')) || 30;
    var seq = 0;
    if (apply) { apply.hidden = true; }  // the select applies itself; the button is for no-script
    api.state = select ? select.value : '';

    function stateNow() { return select ? select.value : ''; }

    function show(data) {
      var tpl = document.createElement('template');
      tpl.innerHTML = data.table_html;
      tableBox.replaceChildren(tpl.content);
      if (summary) {
        Object.keys(data.counts).forEach(function (s) {
          var n = summary.querySelector('[data-state="' + s + '"] [data-count]');
          if (n) { n.textContent = String(data.counts[s]); }
        });
      }
      api.state = data.state;
      api.ranked = data.ranked;
      api.loads += 1;
      tableBox.setAttribute('data-loads', String(api.loads));
      if (status) { status.textContent = t('links.updated', { time: utcText(Date.parse(data.generated_at)) }); }
    }

    function load() {
      var mine = ++seq;
      var state = stateNow();
      var url = tableBox.getAttribute('data-src') + (state ? '?state=' + encodeURIComponent(state) : '');
      return fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then(function (resp) {
          if (resp.status === 401) { window.location.assign('/login?next=' + encodeURIComponent(window.location.pathname + window.location.search)); }
          if (!resp.ok) { throw new Error('HTTP ' + resp.status); }
          return resp.json();
        })
        .then(function (data) { if (mine === seq) { show(data); } })
        .catch(function (err) {
          if (status) { status.textContent = t('links.refresh_failed'); }
          if (window.console) { window.console.warn('links: refresh', err); }
        });
    }

    if (select) {
      select.addEventListener('change', function () { keepParam('state', stateNow()); load(); });
    }
    window.setInterval(function () { if (!document.hidden) { load(); } }, every * 1000);
    api.refresh = load;
  }

  /* ================================================================== uplink page */

  var charts = document.getElementById('link-charts');
  if (charts) { uplinkPage(); }

  function rateText(bps) {
    var units = [['tbps', 1e12], ['gbps', 1e9], ['mbps', 1e6], ['kbps', 1e3]];
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(bps) >= units[i][1]) {
        return t('links.rate_' + units[i][0], { n: iso(fmtNum(bps / units[i][1], 2)) });
      }
    }
    return t('links.rate_bps', { n: iso(fmtNum(bps, 0)) });
  }

  // Per-second labels with as many decimals as the tick step needs (0.0005/s steps are not all "0/s").
  function perSecond(v, step) {
    var digits = isNum(step) && step > 0 ? Math.max(0, Math.min(6, Math.ceil(-Math.log(step) / Math.LN10 - 1e-9))) : 2;
    if (isNum(step) && step > 0 && Math.abs(step * Math.pow(10, digits) - Math.round(step * Math.pow(10, digits))) > 1e-6) {
      digits += 1;  // 2.5 × 10ⁿ steps need one more
    }
    return t('links.per_s', { n: iso(fmtNum(v, digits)) });
  }

  var timeTicks = chartTime.timeTicks;

  // Round value ticks (1, 2, 5 × 10ⁿ) from 0 to at least hi.
  function valueTicks(hi) {
    if (!(hi > 0)) { hi = 1; }
    var raw = hi / 4;
    var mag = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var step = [1, 2, 2.5, 5, 10].map(function (m) { return m * mag; }).filter(function (v) { return v >= raw; })[0];
    var ticks = [];
    for (var v = 0; v <= hi + step * 0.999; v += step) { ticks.push(v); }
    return { ticks: ticks, hi: ticks[ticks.length - 1], step: step };
  }

  // The chart's frame: plot area, x (time, mirrored in Arabic) and the time axis with its name.
  function frame(startMs, endMs, height, aria) {
    var W = 760, H = height, yAxisW = 86, side = 12, top = 10, bottom = 36;
    var rtl = document.documentElement.dir === 'rtl';
    var f = { W: W, H: H, rtl: rtl, px0: rtl ? side : yAxisW, px1: rtl ? W - yAxisW : W - side, py0: top, py1: H - bottom };
    f.x = function (ms) {
      var k = Math.max(0, Math.min(1, (ms - startMs) / (endMs - startMs)));
      return f.rtl ? f.px1 - k * (f.px1 - f.px0) : f.px0 + k * (f.px1 - f.px0);
    };
    f.svg = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: '100%', class: 'lc-svg', role: 'img', 'aria-label': aria });
    timeTicks(startMs, endMs).forEach(function (tk) {
      var tx = f.x(tk.ms);
      f.svg.appendChild(svg('line', { x1: tx, x2: tx, y1: f.py0, y2: f.py1, class: 'lc-grid' }));
      f.svg.appendChild(svg('text', { x: tx, y: f.py1 + 14, 'text-anchor': 'middle', direction: 'ltr', class: 'lc-xtick',
                                      'data-ts': tk.ms }, tk.text));
    });
    f.svg.appendChild(svg('text', { x: (f.px0 + f.px1) / 2, y: H - 3, 'text-anchor': 'middle',
                                    direction: rtl ? 'rtl' : 'ltr', class: 'lc-xlabel' }, t('links.time_axis')));
    f.svg.appendChild(svg('line', { x1: f.px0, x2: f.px1, y1: f.py1, y2: f.py1, class: 'lc-axis' }));
    return f;
  }

  function yAxis(f, hi, label, zeroOnly) {
    var scale = zeroOnly ? { ticks: [0], hi: 1, step: 1 } : valueTicks(hi);
    f.y = function (v) { return f.py1 - (f.py1 - f.py0) * Math.max(0, v) / scale.hi; };
    scale.ticks.forEach(function (v) {
      var gy = f.y(v);
      f.svg.appendChild(svg('line', { x1: f.px0, x2: f.px1, y1: gy, y2: gy, class: 'lc-grid' }));
      f.svg.appendChild(svg('text', { x: f.rtl ? f.px1 + 4 : f.px0 - 4, y: gy + 4, 'text-anchor': 'end',
                                      direction: f.rtl ? 'rtl' : 'ltr', class: 'lc-ytick', 'data-value': v }, label(v, scale.step)));
    });
    return scale;
  }

  // Split points where the step between two is far larger than usual: a hole is never bridged.
  function segmentsOf(pts, res) {
    var limit = Infinity;
    if (res > 0) {
      limit = GAP_FACTOR * res * 1000;
    } else if (pts.length > 2) {
      var steps = [];
      for (var i = 1; i < pts.length; i++) { steps.push(pts[i][0] - pts[i - 1][0]); }
      steps.sort(function (a, b) { return a - b; });
      limit = GAP_FACTOR * steps[Math.floor(steps.length / 2)];
    }
    var segs = [];
    pts.forEach(function (p, n) {
      if (!n || p[0] - pts[n - 1][0] > limit) { segs.push([]); }
      segs[segs.length - 1].push(p);
    });
    return segs;
  }

  function drawLines(f, pts, res, cls, name) {
    var half = res * 500;  // a roll-up is drawn at the middle of its bucket
    var segs = segmentsOf(pts, res);
    segs.forEach(function (seg) {
      var g = svg('g', { class: 'lc-series ' + cls, 'data-series': name, 'data-points': seg.length });
      if (seg.length === 1) {
        g.appendChild(svg('circle', { cx: f.x(seg[0][0] + half).toFixed(1), cy: f.y(seg[0][2]).toFixed(1), r: 2, class: 'lc-dot' }));
      } else {
        g.appendChild(svg('path', { d: 'M' + seg.map(function (p) {
          return f.x(p[0] + half).toFixed(1) + ' ' + f.y(p[2]).toFixed(1);
        }).join(' L'), class: 'lc-line' }));
      }
      f.svg.appendChild(g);
    });
    return segs.length;
  }

  function points(data, name) {
    var s = data.series[name];
    return s ? s.points.filter(function (p) { return isNum(p[0]) && isNum(p[2]); }) : [];
  }

  function message(box, key) {
    box.textContent = '';
    box.appendChild(el('p', 'small text-body-secondary fst-italic mb-0 p-2 empty-state', t(key)));
  }

  function highest(pts) {
    return pts.reduce(function (m, p) { return Math.max(m, p[2]); }, 0);
  }

  function drawTraffic(box, data, never) {
    var ins = points(data, 'in_bps');
    var outs = points(data, 'out_bps');
    var info = { lines: 0, points: ins.length + outs.length, speed: false };
    api.chart.traffic = info;
    if (never) { message(box, 'links.chart_never'); return; }
    if (!info.points) { message(box, 'links.chart_empty'); return; }
    var f = frame(data.start_ms, data.end_ms, 240, t('links.chart_traffic'));
    var top = Math.max(highest(ins), highest(outs));
    var speed = isNum(data.speed_bps) && data.speed_bps > 0 ? data.speed_bps : null;
    // The speed line is drawn when it fits a readable scale; far above the traffic it is named instead.
    var showSpeed = speed !== null && speed <= Math.max(top, 1) * 4;
    yAxis(f, showSpeed ? Math.max(top, speed) * 1.05 : top * 1.1, rateText);
    if (showSpeed) {
      var sy = f.y(speed);
      f.svg.appendChild(svg('line', { x1: f.px0, x2: f.px1, y1: sy, y2: sy, class: 'lc-speed', 'data-bps': speed }));
      f.svg.appendChild(svg('text', { x: f.rtl ? f.px0 + 4 : f.px1 - 4, y: sy - 4, 'text-anchor': 'end',
                                      direction: f.rtl ? 'rtl' : 'ltr', class: 'lc-speed-label' },
                            t('links.speed_line', { speed: rateText(speed) })));
      info.speed = true;
    }
    info.lines = drawLines(f, ins, data.resolution_s, 'lc-in', 'in_bps') + drawLines(f, outs, data.resolution_s, 'lc-out', 'out_bps');
    box.textContent = '';
    box.appendChild(f.svg);
    var note = [];
    if (speed !== null && !showSpeed) { note.push(t('links.speed_off_scale', { speed: rateText(speed) })); }
    var last = function (pts) { return pts.length ? rateText(pts[pts.length - 1][2]) : '—'; };
    note.push(t('links.traffic_latest', { in: last(ins), out: last(outs) }));
    box.appendChild(el('p', 'small text-body-secondary mb-0 lc-note', note.join(' · ')));
  }

  function drawErrors(box, data, never) {
    var errs = points(data, 'errors_ps');
    var disc = points(data, 'discards_ps');
    var info = { lines: 0, points: errs.length + disc.length };
    api.chart.errors = info;
    if (never) { message(box, 'links.chart_never'); return; }
    if (!info.points) { message(box, 'links.chart_empty'); return; }
    var f = frame(data.start_ms, data.end_ms, 180, t('links.chart_errors'));
    var top = Math.max(highest(errs), highest(disc));
    info.none = !(top > 0);  // all zero: one 0 tick, and the note says so in words
    yAxis(f, top * 1.1, perSecond, info.none);
    info.lines = drawLines(f, errs, data.resolution_s, 'lc-errors', 'errors_ps') +
      drawLines(f, disc, data.resolution_s, 'lc-discards', 'discards_ps');
    box.textContent = '';
    box.appendChild(f.svg);
    if (info.none) { box.appendChild(el('p', 'small text-body-secondary mb-0 lc-note', t('links.errors_none'))); }
  }

  // Up/down bands from the status changes. Nothing is known before the uplink's first stored
  // sample in the range (first_sample_ms): that stretch is "no data", never the first change's
  // "previous" painted back to the start. From there, before the first change the status is that
  // change's "previous"; with no change in the range it is the status now (since when it is
  // known). A change that counts two transitions (down and back between two polls) is a tick.
  // The time between two samples: the roll-up's bucket, or the median step of the raw points.
  function sampleStep(data) {
    if (data.resolution_s > 0) { return data.resolution_s * 1000; }
    var steps = [];
    Object.keys(data.series || {}).forEach(function (k) {
      var pts = data.series[k].points;
      for (var i = 1; i < pts.length; i++) { steps.push(pts[i][0] - pts[i - 1][0]); }
    });
    steps.sort(function (x, y) { return x - y; });
    return steps.length ? steps[Math.floor(steps.length / 2)] : 0;
  }

  function statusBands(data) {
    var start = data.start_ms;
    var end = data.end_ms;
    var changes = (data.changes || []).filter(function (c) { return isNum(c.at_ms) && c.at_ms >= start && c.at_ms <= end; });
    var bands = [];
    var cursor = start;
    var current;
    var known = isNum(data.first_sample_ms) ? Math.max(start, Math.min(end, data.first_sample_ms)) : end;
    // A first sample within a step of the start is the range cut through the data (the roll-up
    // bucket across the start is not returned), not a hole: the lines bridge no less.
    if (known - start <= GAP_FACTOR * sampleStep(data)) { known = start; }
    if (changes.length && changes[0].at_ms < known) { known = Math.max(start, changes[0].at_ms); }
    if (known > start) {
      bands.push({ from: start, to: known, status: 'unknown' });
      cursor = known;
    }
    if (changes.length) {
      current = changes[0].previous || 'unknown';
    } else if (isNum(data.oper_since_ms) && data.oper_since_ms > cursor) {
      bands.push({ from: cursor, to: Math.min(end, data.oper_since_ms), status: 'unknown' });
      cursor = Math.min(end, data.oper_since_ms);
      current = data.oper_status || 'unknown';
    } else {
      current = data.oper_status || 'unknown';
    }
    changes.forEach(function (c) {
      if (c.at_ms > cursor) { bands.push({ from: cursor, to: c.at_ms, status: current }); }
      cursor = Math.max(cursor, c.at_ms);
      current = c.status || 'unknown';
    });
    if (end > cursor) { bands.push({ from: cursor, to: end, status: current }); }
    bands.forEach(function (b) { b.kind = b.status === 'up' ? 'up' : (b.status === 'unknown' || !b.status ? 'unknown' : 'down'); });
    // A change back to the same status (down and up between two polls) is a tick, not a new band.
    bands = bands.reduce(function (out, b) {
      var last = out[out.length - 1];
      if (last && last.kind === b.kind && last.to === b.from) { last.to = b.to; } else { out.push(b); }
      return out;
    }, []);
    var transitions = changes.reduce(function (n, c) { return n + (isNum(c.transitions) ? c.transitions : 1); }, 0);
    return { bands: bands, ticks: changes.filter(function (c) { return c.transitions > 1; }), transitions: transitions };
  }

  function drawStatus(box, data, never) {
    var info = { bands: 0, down: 0, changes: 0 };
    api.chart.status = info;
    if (never) { message(box, 'links.chart_never'); return; }
    var built = statusBands(data);
    info.changes = built.transitions;  // transitions, as the facts' "status changes in 24 h" count them
    var f = frame(data.start_ms, data.end_ms, 86, t('links.chart_status'));
    var y0 = f.py0 + 6;
    var h = f.py1 - f.py0 - 12;
    var withDate = data.end_ms - data.start_ms > 86400000;
    built.bands.forEach(function (b) {
      var xa = f.x(b.from);
      var xb = f.x(b.to);
      var r = svg('rect', { x: Math.min(xa, xb).toFixed(1), y: y0, width: Math.max(1, Math.abs(xb - xa)).toFixed(1), height: h,
                            class: 'lc-band lc-band-' + b.kind, 'data-status': b.kind, 'data-from': b.from, 'data-to': b.to });
      r.appendChild(svg('title', {}, t('links.band_title', { status: t('links.oper.' + (b.kind === 'unknown' ? 'no_data' : b.kind)),
                                                            from: localTime(b.from, withDate), to: localTime(b.to, withDate) })));
      f.svg.appendChild(r);
      if (b.kind === 'down') { info.down += 1; }
    });
    built.ticks.forEach(function (c) {
      var tx = f.x(c.at_ms);
      var tick = svg('line', { x1: tx, x2: tx, y1: y0 - 4, y2: y0 + h + 4, class: 'lc-flap' });
      tick.appendChild(svg('title', {}, t('links.flap_title', { time: localTime(c.at_ms, withDate) })));
      f.svg.appendChild(tick);
    });
    info.bands = built.bands.length;
    box.textContent = '';
    box.appendChild(f.svg);
    var downs = built.bands.filter(function (b) { return b.kind === 'down'; }).length;
    box.appendChild(el('p', 'small text-body-secondary mb-0 lc-note',
                       t('links.status_summary', { count: info.changes, down: downs })));
  }

  function uplinkPage() {
    var select = document.getElementById('chart-range');
    var submit = document.getElementById('range-submit');
    var status = document.getElementById('chart-status');
    var seq = 0;
    if (submit) { submit.hidden = true; }
    api.chart.range = charts.getAttribute('data-range');

    function load() {
      var mine = ++seq;
      var range = select ? select.value : charts.getAttribute('data-range');
      api.chart.ready = false;
      api.chart.range = range;
      charts.setAttribute('data-ready', 'false');
      if (status) { status.textContent = t('links.chart_loading'); }
      fetch(charts.getAttribute('data-src') + '?range=' + encodeURIComponent(range),
            { credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then(function (resp) {
          if (!resp.ok) { throw new Error('HTTP ' + resp.status); }
          return resp.json();
        })
        .then(function (data) {
          if (mine !== seq) { return; }
          var never = !isNum(data.last_ok_ms) && !Object.keys(data.series || {}).some(function (k) {
            return data.series[k].points.length;
          });
          drawTraffic(document.getElementById('chart-traffic'), data, never);
          drawErrors(document.getElementById('chart-errors'), data, never);
          drawStatus(document.getElementById('chart-status-timeline'), data, never);
          api.chart.resolution = data.resolution_s;
          api.chart.start = data.start_ms;
          api.chart.end = data.end_ms;
          api.chart.loads += 1;
          api.chart.ready = true;
          charts.setAttribute('data-ready', 'true');
          if (status) {
            status.textContent = never ? t('links.chart_never') : t('links.chart_shown', {
              range: t('links.range.' + data.range),
              res: t('links.res_' + (data.resolution_s > 0 ? data.resolution_s : 'raw'))
            });
          }
        })
        .catch(function (err) {
          if (mine !== seq) { return; }
          api.chart.error = String(err);
          if (status) { status.textContent = t('links.chart_failed'); }
          if (window.console) { window.console.warn('links: charts', err); }
        });
    }

    if (select) {
      select.addEventListener('change', function () {
        keepParam('range', select.value);
        charts.setAttribute('data-range', select.value);
        load();
      });
    }
    load();
  }
}());
