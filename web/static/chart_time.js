/* infra-mgr: the time axis of the dashboard's SVG charts (the Power page's readings, an uplink's
 * traffic), in one place so both pages label time alike.
 *
 * Times are the browser's local zone. Loaded before power.js and links.js (all `defer`, so in
 * order); exposes `window.infraChartTime`.
 */
(function () {
  'use strict';

  function pad2(n) { return (n < 10 ? '0' : '') + n; }
  function hhmm(d) { return pad2(d.getHours()) + ':' + pad2(d.getMinutes()); }
  function mmdd(d) { return pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()); }
  function localTime(ms, withDate) {
    var d = new Date(ms);
    return (withDate ? d.getFullYear() + '-' + mmdd(d) + ' ' : '') + hhmm(d);
  }

  // Ticks at round local times: about six over any range, from a minute to a month apart.
  var TICK_STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 14400, 21600, 43200, 86400, 172800, 345600,
                    604800, 1209600, 2592000];
  function timeTicks(startMs, endMs) {
    var span = (endMs - startMs) / 1000;
    var step = TICK_STEPS.filter(function (s) { return span / s <= 7; })[0] || TICK_STEPS[TICK_STEPS.length - 1];
    var out = [];
    var s = new Date(startMs);
    if (step < 86400) {
      var anchor = new Date(s.getFullYear(), s.getMonth(), s.getDate()).getTime();
      for (var ms = anchor + Math.ceil((startMs - anchor) / (step * 1000)) * step * 1000; ms <= endMs; ms += step * 1000) {
        var d = new Date(ms);
        out.push({ ms: ms, text: d.getHours() === 0 && d.getMinutes() === 0 ? mmdd(d) : hhmm(d) });
      }
    } else {
      var days = step / 86400;
      var day = new Date(s.getFullYear(), s.getMonth(), s.getDate() + 1);
      for (; day.getTime() <= endMs; day = new Date(day.getFullYear(), day.getMonth(), day.getDate() + days)) {
        out.push({ ms: day.getTime(), text: mmdd(day) });
      }
    }
    return out;
  }

  window.infraChartTime = { pad2: pad2, hhmm: hhmm, mmdd: mmdd, localTime: localTime, timeTicks: timeTicks };
})();
