/* infra-mgr: the city topology on the Network page.
 *
 * Fetches /network/topology.json (the API's topology: sites, devices and inventory links, each
 * with its health state decided on the server) and draws it with cytoscape, which is served from
 * web/node_modules like Bootstrap. The states are decided on the server so this file only draws.
 *
 * The CSP allows our own files only: no inline script, no eval, no inline style attributes.
 * Strings come from the <script type="application/json" id="topology-strings"> data block, and
 * every piece of data is put in the page with textContent, never as HTML.
 *
 * The same data also fills a plain list of sites and devices (keyboard and screen-reader users,
 * and the fallback when cytoscape is missing). `window.infraTopology` exposes what was drawn, for
 * the browser tests and for anyone debugging from the console.
 */
(function () {
  'use strict';

  var box = document.getElementById('topology');
  if (!box) { return; }
  var statusEl = document.getElementById('topology-status');
  var listEl = document.getElementById('topology-list');
  var fitBtn = document.getElementById('topology-fit');
  var stringsEl = document.getElementById('topology-strings');
  var strings = {};
  try { strings = JSON.parse(stringsEl ? stringsEl.textContent : '{}'); } catch (e) { strings = {}; }

  // Bootstrap's palette, so the graph, the legend (app.css) and the badges agree.
  var COLORS = { ok: '#198754', degraded: '#ffc107', down: '#dc3545', never: '#6c757d' };
  // Shapes repeat the colour for people who cannot tell green from red.
  var SHAPES = { ok: 'ellipse', degraded: 'triangle', down: 'diamond', never: 'round-rectangle' };
  var BADGES = { ok: 'success', degraded: 'warning', down: 'danger', never: 'secondary' };
  var SPACING = 80;   // between devices inside a site
  var GAP = 70;       // between sites on the ring
  var ZIGZAG_FROM = 16;  // more branches than this: two rings
  var FAR_ZOOM = 0.6;    // zoomed out further: site labels show the short code, device labels hide

  window.infraTopology = { ready: false, nodes: 0, edges: 0, sites: {}, devices: {}, cy: null };

  function t(key, params) {
    var text = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
    if (params) {
      Object.keys(params).forEach(function (name) { text = text.split('{' + name + '}').join(String(params[name])); });
    }
    return text;
  }

  function say(text) { if (statusEl) { statusEl.textContent = text; } }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function badge(state) {
    var b = el('span', 'badge text-bg-' + (BADGES[state] || 'secondary'), t('state.' + state));
    b.setAttribute('data-state', state);
    return b;
  }

  function link(href, text, dir) {
    var a = el('a');
    a.href = href;
    var bdi = el('bdi', null, text);
    if (dir) { bdi.dir = dir; }
    a.appendChild(bdi);
    return a;
  }

  /* ------------------------------------------------------------------ list fallback */

  function buildList(sites, devicesBySite) {
    if (!listEl) { return; }
    listEl.textContent = '';
    sites.forEach(function (s) {
      var li = el('li', 'mb-2');
      li.setAttribute('data-site', s.site);
      li.setAttribute('data-state', s.state);
      li.appendChild(link(s.url, s.label));
      li.appendChild(document.createTextNode(' '));
      li.appendChild(el('span', 'text-body-secondary', t('kind.' + s.site_kind)));
      li.appendChild(document.createTextNode(' '));
      li.appendChild(badge(s.state));
      var members = devicesBySite[s.site] || [];
      if (members.length) {
        var ul = el('ul', 'list-unstyled ms-3 mt-1');
        members.forEach(function (d) {
          var dli = el('li');
          dli.setAttribute('data-device', d.label);
          dli.setAttribute('data-state', d.state);
          dli.appendChild(link(d.url, d.label, 'ltr'));
          dli.appendChild(document.createTextNode(' '));
          dli.appendChild(badge(d.state));
          dli.appendChild(document.createTextNode(' '));
          dli.appendChild(el('span', 'text-body-secondary', t('reason.' + d.reason)));
          ul.appendChild(dli);
        });
        li.appendChild(ul);
      }
      listEl.appendChild(li);
    });
  }

  /* ------------------------------------------------------------------ layout */

  // Where each node goes: headquarters and data centres in a row in the middle, branches on a
  // ring around them (ordered by code, so a branch keeps its place between visits), devices in a
  // small grid inside their site. Computed here (cytoscape's "preset" layout) because no built-in
  // layout knows that a municipality's WAN is a star around its core.
  function positions(sites, devicesBySite) {
    var pos = {};
    function footprint(s) {
      var n = (devicesBySite[s.site] || []).length;
      var cols = Math.max(1, Math.ceil(Math.sqrt(n)));
      var rows = Math.max(1, Math.ceil(n / cols));
      return { n: n, cols: cols, w: cols * SPACING, h: rows * SPACING };
    }
    function place(s, cx, cy, f) {
      pos[s.id] = { x: cx, y: cy };
      (devicesBySite[s.site] || []).forEach(function (d, i) {
        var col = i % f.cols;
        var row = Math.floor(i / f.cols);
        pos[d.id] = { x: cx - f.w / 2 + SPACING / 2 + col * SPACING, y: cy - f.h / 2 + SPACING / 2 + row * SPACING };
      });
    }
    var central = sites.filter(function (s) { return s.central; });
    var branches = sites.filter(function (s) { return !s.central; });
    var cf = central.map(footprint);
    var rowWidth = cf.reduce(function (sum, f) { return sum + f.w; }, 0) + GAP * Math.max(0, cf.length - 1);
    var x = -rowWidth / 2;
    var coreRadius = 0;
    central.forEach(function (s, i) {
      place(s, x + cf[i].w / 2, 0, cf[i]);
      x += cf[i].w + GAP;
      coreRadius = Math.max(coreRadius, rowWidth / 2, cf[i].h / 2);
    });
    var bf = branches.map(footprint);
    var sizes = bf.map(function (f) { return Math.max(f.w, f.h) + GAP; });
    var circumference = sizes.reduce(function (a, b) { return a + b; }, 0);
    var biggest = sizes.reduce(function (a, b) { return Math.max(a, b); }, 0);
    // Many branches (the city has 63): alternate them between two rings, which halves the radius
    // (neighbours sit at different distances, so they may share an angle range). With an odd
    // count the first and last would both be inner and adjacent, so the circle gets one spare slot.
    var zigzag = branches.length > ZIGZAG_FROM;
    var spare = zigzag && branches.length % 2 ? circumference / branches.length : 0;
    var share = circumference + spare;
    var radius = Math.max(share / (zigzag ? 2 : 1) / (2 * Math.PI), coreRadius + biggest / 2 + GAP * 2);
    var step = zigzag ? biggest : 0;
    var angle = -Math.PI / 2;
    var mirror = document.documentElement.dir === 'rtl' ? -1 : 1;  // Arabic: go round the other way
    // The map's frame is wide (a page, not a square): the ring becomes an ellipse of the frame's
    // shape, so at the default zoom the branches and their names get the width that would
    // otherwise stay empty on both sides.
    var aspect = Math.min(2.5, Math.max(1, box.clientWidth / Math.max(1, box.clientHeight)));
    // Each branch gets a share of the full circle in proportion to its size, so a few branches
    // spread around the core instead of bunching at the top.
    branches.forEach(function (s, i) {
      var arc = 2 * Math.PI * sizes[i] / Math.max(share, 1);
      var r = radius + (i % 2) * step;
      angle += arc / 2;
      place(s, mirror * aspect * r * Math.cos(angle), r * Math.sin(angle), bf[i]);
      angle += arc / 2;
    });
    return pos;
  }

  /* ------------------------------------------------------------------ labels */

  /* Names on the map are HTML links laid over the canvas, not text drawn into it: the browser
   * shapes Latin and Arabic text with the page's own fonts, a person can click, tab to or have read
   * out a site or a device by its name, and what opens the site page does not depend on where a
   * font happened to put a label on the canvas. The layer follows every pan and zoom. A click on
   * a site's box itself (not its label) is still a cytoscape tap on the site's node. */
  function labelLayer(cy) {
    var layer = el('div', 'topology-labels');
    box.appendChild(layer);
    var links = [];
    cy.nodes().forEach(function (n) {
      var site = n.data('kind') === 'site';
      var a = el('a', 'topology-label ' + (site ? 'topology-label-site' : 'topology-label-device'), n.data('label'));
      a.href = n.data('url');
      a.setAttribute('dir', 'auto');
      a.setAttribute('data-node', n.id());
      a.setAttribute('data-state', n.data('state'));
      a.addEventListener('mouseenter', function () { n.emit('mouseover'); });
      a.addEventListener('mouseleave', function () { n.emit('mouseout'); });
      layer.appendChild(a);
      links.push({ node: n, a: a, site: site });
    });
    var pending = false;
    function place() {
      pending = false;
      var z = cy.zoom();
      var far = z < FAR_ZOOM;
      var siteLinks = [];
      links.forEach(function (l) {
        if (l.site) {
          l.a.textContent = far ? l.node.data('site') : l.node.data('label');
          siteLinks.push(l);
          return;
        }
        var p = l.node.renderedPosition();
        l.a.hidden = far;
        l.a.style.left = p.x + 'px';
        l.a.style.top = (p.y + 12 * z + 2) + 'px';
      });
      placeSiteLabels(siteLinks);
    }

    /* Site names must never cover each other (63 branches on two rings put neighbours' names on
     * top of each other when every name sits above its box). Each name takes the first free spot
     * around its own box — above, below, outside, inside, then the corners — against the names
     * already placed and inside the map's frame; where none is free it takes the least covered
     * one. Names are placed in order of how crowded their spot is, densest first, so the hard
     * cases choose before the easy ones take their room. Pure geometry on rendered boxes: runs on
     * every pan and zoom, 65 sites in well under a millisecond. */
    function placeSiteLabels(siteLinks) {
      var W = box.clientWidth;
      var H = box.clientHeight;
      var GAPPX = 3;
      var items = siteLinks.map(function (l) {
        var bb = l.node.renderedBoundingBox({ includeLabels: false });
        return { l: l, bb: bb, w: l.a.offsetWidth, h: l.a.offsetHeight,
                 cx: (bb.x1 + bb.x2) / 2, cy: (bb.y1 + bb.y2) / 2 };
      });
      var mid = items.reduce(function (acc, it) { return { x: acc.x + it.cx / items.length, y: acc.y + it.cy / items.length }; },
                             { x: 0, y: 0 });
      items.forEach(function (it) {
        it.crowd = items.reduce(function (n, o) {
          return n + (o !== it && Math.abs(o.cx - it.cx) < it.w + o.w && Math.abs(o.cy - it.cy) < 3 * (it.h + o.h) ? 1 : 0);
        }, 0);
      });
      items.sort(function (a, b) { return b.crowd - a.crowd || a.cy - b.cy || a.cx - b.cx; });
      var placed = [];
      function overlap(r) {
        var total = 0;
        placed.forEach(function (q) {
          var dx = Math.min(r.x2, q.x2) - Math.max(r.x1, q.x1);
          var dy = Math.min(r.y2, q.y2) - Math.max(r.y1, q.y1);
          if (dx > 0 && dy > 0) { total += dx * dy; }
        });
        var outside = (r.x1 < 0 || r.y1 < 0 || r.x2 > W || r.y2 > H) ? 1e6 : 0;
        return total + outside;
      }
      items.forEach(function (it) {
        var bb = it.bb;
        var w = it.w;
        var h = it.h;
        var out = it.cx >= mid.x ? 1 : -1;
        var right = bb.x2 + GAPPX;
        var left = bb.x1 - GAPPX - w;
        var spots = [
          [it.cx - w / 2, bb.y1 - GAPPX - h],                 // above
          [it.cx - w / 2, bb.y2 + GAPPX],                     // below
          [out > 0 ? right : left, it.cy - h / 2],            // outside
          [out > 0 ? left : right, it.cy - h / 2],            // inside
          [right, bb.y1 - GAPPX - h], [left, bb.y1 - GAPPX - h],
          [right, bb.y2 + GAPPX], [left, bb.y2 + GAPPX]
        ];
        // then further out: a row or two above and below, shifted half a name to either side
        for (var k = 1; k <= 2; k++) {
          [0, -0.5, 0.5].forEach(function (shift) {
            spots.push([it.cx - w / 2 + shift * w, bb.y1 - GAPPX - h - k * (h + GAPPX)]);
            spots.push([it.cx - w / 2 + shift * w, bb.y2 + GAPPX + k * (h + GAPPX)]);
          });
        }
        var best = null;
        for (var i = 0; i < spots.length; i++) {
          var r = { x1: spots[i][0], y1: spots[i][1], x2: spots[i][0] + w, y2: spots[i][1] + h };
          var cost = overlap(r);
          if (best === null || cost < best.cost) { best = { r: r, cost: cost }; }
          if (cost === 0) { break; }
        }
        placed.push(best.r);
        it.l.a.style.transform = 'none';
        it.l.a.style.left = best.r.x1 + 'px';
        it.l.a.style.top = best.r.y1 + 'px';
      });
    }
    cy.on('render viewport resize', function () {
      if (!pending) { pending = true; window.requestAnimationFrame(place); }
    });
    place();
  }

  /* ------------------------------------------------------------------ graph */

  function draw(data, sites, devices, devicesBySite) {
    var pos = positions(sites, devicesBySite);
    var elements = [];
    sites.forEach(function (s) {
      elements.push({ group: 'nodes', data: Object.assign({}, s, { color: COLORS[s.state] || COLORS.never }),
                      position: pos[s.id], classes: 'site' });
    });
    devices.forEach(function (d) {
      elements.push({ group: 'nodes', data: Object.assign({}, d, { color: COLORS[d.state] || COLORS.never,
                                                                 shape: SHAPES[d.state] || 'ellipse' }),
                      position: pos[d.id], classes: 'device' });
    });
    data.edges.forEach(function (e) { elements.push({ group: 'edges', data: e }); });

    var cy = window.cytoscape({
      container: box,
      elements: elements,
      layout: { name: 'preset', fit: true, padding: 30 },
      minZoom: 0.05,
      maxZoom: 3,
      boxSelectionEnabled: false,
      autoungrabify: true,
      style: [
        { selector: 'node.device', style: {
          shape: 'data(shape)', 'background-color': 'data(color)', width: 24, height: 24,
          'border-width': 1, 'border-color': '#343a40' } },
        { selector: 'node.site', style: {
          shape: 'round-rectangle', 'background-color': 'data(color)',
          'background-opacity': 0.22, 'border-color': 'data(color)', 'border-width': 3, padding: 14 } },
        { selector: 'node.site[?central]', style: { 'border-width': 4 } },
        { selector: 'edge', style: { width: 2, 'line-color': '#6c757d', 'curve-style': 'bezier', opacity: 0.8 } },
        { selector: 'edge[state = "down"]', style: { 'line-color': COLORS.down, 'line-style': 'dashed', width: 3 } },
        { selector: 'edge[state = "unknown"]', style: { 'line-color': '#adb5bd', 'line-style': 'dotted' } },
        { selector: '.hover', style: { 'overlay-color': '#0d6efd', 'overlay-opacity': 0.15, 'overlay-padding': 4 } }
      ]
    });

    // Zoomed out over the whole city, site borders thicken so a red branch still stands out.
    var pending = false;
    function scaleSites() {
      pending = false;
      var border = Math.min(16, Math.max(3, 2.5 / cy.zoom()));
      cy.batch(function () { cy.nodes('.site').style('border-width', border); });
    }
    cy.on('zoom', function () {
      if (!pending) { pending = true; window.requestAnimationFrame(scaleSites); }
    });
    scaleSites();
    labelLayer(cy);

    var names = {};
    devices.forEach(function (d) { names[d.id] = d.label; });
    cy.on('tap', 'node', function (evt) {
      var url = evt.target.data('url');
      if (url) { window.location.assign(url); }
    });
    cy.on('mouseover', 'node, edge', function (evt) {
      var x = evt.target;
      x.addClass('hover');
      box.classList.add('topology-pointer');
      if (x.isEdge()) {
        say(t('network.link_hover', {
          a: names[x.data('source')] || '', a_if: x.data('a_interface'), b: names[x.data('target')] || '',
          b_if: x.data('b_interface'), source: String(x.data('link_source') || '').toUpperCase(),
          state: t('link.' + x.data('state'))
        }));
      } else if (x.data('kind') === 'site') {
        // A site names its devices that are not fine and why (worst first, as the server sent them).
        say([x.data('label') + ' — ' + t('state.' + x.data('state'))].concat((x.data('problems') || []).map(
          function (p) { return p.hostname + ': ' + t('reason.' + p.reason); })).join(' — '));
      } else {
        say(x.data('label') + ' — ' + t('state.' + x.data('state')) + ' — ' + t('reason.' + x.data('reason')));
      }
    });
    cy.on('mouseout', 'node, edge', function (evt) {
      evt.target.removeClass('hover');
      box.classList.remove('topology-pointer');
    });
    if (fitBtn) {
      fitBtn.hidden = false;
      fitBtn.addEventListener('click', function () { cy.fit(undefined, 30); });
    }
    return cy;
  }

  /* ------------------------------------------------------------------ graph elements */

  // The JSON is the API's topology (GET /api/v1/network/topology, the same view): sites, devices
  // and links with their states already decided. Here it only becomes cytoscape's nodes (sites are
  // compound parents of their devices) and edges, with names in the page's language and the
  // addresses of the pages a click opens.
  function toGraph(topo) {
    var arabic = document.documentElement.lang === 'ar';
    var codeOf = {};
    topo.sites.forEach(function (s) { codeOf[s.id] = s.code; });
    var nodes = topo.sites.map(function (s) {
      return { id: 'site:' + s.code, kind: 'site', label: arabic ? (s.name_ar || s.name_en) : (s.name_en || s.name_ar),
               site: s.code, site_kind: s.kind, central: s.central, state: s.state, states: s.states,
               problems: s.problems || [], url: '/sites/' + encodeURIComponent(s.code) };
    });
    topo.devices.forEach(function (d) {
      var code = codeOf[d.site_id];
      var node = { id: 'device:' + d.id, kind: 'device', device_id: d.id, label: d.hostname, site: code || '',
                   role: d.role, status: d.status, poll_status: d.poll_status || 'never', state: d.state,
                   reason: d.reason, url: '/devices/' + d.id };
      if (code !== undefined) { node.parent = 'site:' + code; }
      nodes.push(node);
    });
    var edges = topo.links.map(function (l) {
      return { id: 'link:' + l.id, source: 'device:' + l.a_device_id, target: 'device:' + l.b_device_id,
               a_interface: l.a_interface, b_interface: l.b_interface, a_oper: l.a_oper, b_oper: l.b_oper,
               link_source: l.source, state: l.state };
    });
    return { nodes: nodes, edges: edges, truncated: topo.truncated };
  }

  /* ------------------------------------------------------------------ main */

  function show(topo) {
    var data = toGraph(topo);
    var sites = data.nodes.filter(function (n) { return n.kind === 'site'; });
    var devices = data.nodes.filter(function (n) { return n.kind === 'device'; });
    var devicesBySite = {};
    devices.forEach(function (d) { (devicesBySite[d.site] = devicesBySite[d.site] || []).push(d); });
    var api = window.infraTopology;
    sites.forEach(function (s) { api.sites[s.site] = s.state; });
    devices.forEach(function (d) { api.devices[d.label] = d.state; });
    api.nodes = devices.length;
    api.siteCount = sites.length;
    api.edges = data.edges.length;
    api.data = data;
    buildList(sites, devicesBySite);

    var ready = t('network.topology_ready', { sites: sites.length, devices: devices.length, links: data.edges.length });
    if (data.truncated) { ready += ' ' + t('network.truncated'); }
    if (typeof window.cytoscape !== 'function') {
      // Library not installed (npm ci not run): say so, and open the list, which carries the same facts.
      box.hidden = true;
      var details = document.getElementById('topology-details');
      if (details) { details.open = true; }
      say(t('network.no_graph_lib'));
    } else {
      api.cy = draw(data, sites, devices, devicesBySite);
      say(ready);
    }
    api.ready = true;
    box.setAttribute('data-ready', 'true');
  }

  function fail(err) {
    box.hidden = true;
    box.setAttribute('data-ready', 'error');
    say(t('network.graph_failed'));
    if (window.console) { window.console.warn('topology:', err); }
  }

  fetch(box.getAttribute('data-src'), { credentials: 'same-origin', headers: { Accept: 'application/json' } })
    .then(function (resp) {
      if (!resp.ok) { throw new Error('HTTP ' + resp.status); }
      return resp.json();
    })
    .then(show)
    .catch(fail);
}());
