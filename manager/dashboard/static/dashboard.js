// The swarmlet dashboard: reads the token from the link's fragment (or the form), then follows
// GET /api/stream (server-sent events, read through fetch so that the token goes in a header) and
// draws each view it gets. Everything from the swarm is put in as text, never as markup.
'use strict';

(() => {
  const KEY = 'swarmlet-dashboard-token';
  const $ = (id) => document.getElementById(id);

  /** An element with attributes and children; strings become text nodes. */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.dataset[k.slice(5).replace(/-(\w)/g, (_, c) => c.toUpperCase())] = v;
      else e.setAttribute(k, v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    return e;
  }

  function setStatus(status, text) {
    $('status').dataset.status = status;
    $('status').textContent = text;
  }

  function taskBox(t) {
    const label = t.slot ? `${t.service}.${t.slot}` : t.service;
    return el('span', { class: `task state-${t.state}`, 'data-service': t.service, 'data-state': t.state, title: `${label} ${t.id.slice(0, 12)}: ${t.state}${t.message ? ` (${t.message})` : ''}` }, label);
  }

  function nodeCard(n) {
    const labels = Object.entries(n.labels).map(([k, v]) => el('li', {}, v ? `${k}=${v}` : k));
    return el(
      'article',
      { class: 'node', 'data-node': n.hostname, 'data-state': n.state },
      el('h3', {}, n.hostname),
      el('div', {},
        el('span', { class: `badge state-${n.state}`, 'data-field': 'state' }, n.state),
        el('span', { class: 'badge' }, n.role),
        n.leader ? el('span', { class: 'badge leader' }, 'leader') : null,
        n.availability !== 'active' ? el('span', { class: 'badge' }, n.availability) : null,
        n.reachability && n.reachability !== 'reachable' ? el('span', { class: 'badge' }, n.reachability) : null),
      el('div', { class: 'meta' }, n.addr, n.message ? ` · ${n.message}` : ''),
      labels.length ? el('ul', { class: 'labels' }, labels) : null,
      el('div', { class: 'tasks' }, n.tasks.map(taskBox)),
    );
  }

  function rows(tbody, items, cells, columns) {
    tbody.replaceChildren(...(items.length ? items.map((i) => el('tr', {}, cells(i).map((c) => el('td', {}, c)))) : [el('tr', {}, el('td', { class: 'empty', colspan: String(columns) }, 'none'))]));
  }

  function render(view) {
    const cards = view.nodes.map(nodeCard);
    if (view.unassigned.length) cards.push(el('article', { class: 'node', 'data-node': '', 'data-state': 'unknown' }, el('h3', {}, 'not placed'), el('div', { class: 'meta' }, 'no node fits these tasks yet'), el('div', { class: 'tasks' }, view.unassigned.map(taskBox))));
    $('nodes').replaceChildren(...cards);
    rows($('overlays').tBodies[0], view.overlays, (o) => [o.name, String(o.vni), o.subnet, o.hosts.join(', ') || '–'], 4);
    rows($('ports').tBodies[0], view.ports, (p) => [p.service, String(p.published), String(p.target), p.protocol, p.mode], 5);
    $('events').replaceChildren(...view.events.map((e) => el('li', {}, el('time', {}, e.time.slice(11, 19)), `${e.type} ${e.action} ${e.name || e.actorId.slice(0, 12)}${e.change ? ` (${e.change})` : ''}`)));
  }

  function askForToken(reason) {
    setStatus('unauthorized', 'token needed');
    if (reason) $('login-reason').textContent = reason;
    $('login').hidden = false;
  }

  /** Follows the stream until it ends; resolves with the HTTP status (0: the connection failed). */
  async function follow(token) {
    let res;
    try {
      res = await fetch('/api/stream', { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
    } catch {
      return 0;
    }
    if (!res.ok || !res.body) return res.status;
    setStatus('live', 'live');
    $('main').hidden = false;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch {
        return 0;
      }
      if (chunk.done) return 200;
      buffer += chunk.value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (data) render(JSON.parse(data));
      }
    }
  }

  async function run(token) {
    $('login').hidden = true;
    for (;;) {
      const status = await follow(token);
      if (status === 401) {
        sessionStorage.removeItem(KEY);
        return askForToken('The token was refused (it may have been rotated): run "swarmlet dashboard" on a manager and open the link it prints, or paste the token here.');
      }
      setStatus('reconnecting', status ? `reconnecting (HTTP ${status})…` : 'reconnecting…');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('token').value.trim();
    if (!token) return;
    sessionStorage.setItem(KEY, token);
    $('token').value = '';
    void run(token);
  });

  const fromLink = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromLink) {
    sessionStorage.setItem(KEY, fromLink);
    history.replaceState(null, '', location.pathname);
  }
  const token = sessionStorage.getItem(KEY);
  if (token) void run(token);
  else askForToken();
})();
