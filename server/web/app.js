// tally live dashboard: plain JavaScript, no framework, no build step.
//
// The page keeps the latest result of every area and electoral unit of the
// selected contest in a map, fed by the server-sent event stream
// (/api/v1/stream?contest=...). Every view is a pure function of that state:
// render() builds the view afresh and morphs it into the page, so figures
// change in place (bars animate) without a reload. Station minutes, history
// and rejections are not streamed; they are fetched when a view needs them
// and fetched again when a result of their ward changes or the server's
// rejection count moves.
//
// The Content-Security-Policy forbids inline styles, so bar widths are carried
// in data-w attributes and applied through the CSSOM (el.style.width).
'use strict';

(function () {
  const API = '/api/v1';

  // ---- Vietnamese labels --------------------------------------------------

  const UNIT_STATUS = {
    counting: 'Đang kiểm phiếu',
    decided: 'Đã xác định người trúng cử',
    additional_election: 'Bầu thêm',
    re_election: 'Bầu cử lại',
    tie: 'Bằng phiếu — cần quyết định',
  };
  const UNIT_STATUS_EN = {
    counting: 'counting',
    decided: 'winners decided',
    additional_election: 'additional election',
    re_election: 're-election',
    tie: 'tie — a decision is needed',
  };
  const UNIT_STATUS_NOTE = {
    counting: 'Kết quả tạm thời, sẽ thay đổi khi các Tổ bầu cử gửi thêm biên bản.',
    decided: 'Tất cả khu vực bỏ phiếu đã có biên bản chính thức.',
    additional_election: 'Số người trúng cử chưa đủ theo quy định — tổ chức bầu thêm (Điều 79).',
    re_election: 'Số cử tri đi bầu chưa quá một nửa tổng số cử tri trong danh sách — tổ chức bầu cử lại (Điều 80).',
    tie: 'Các ứng cử viên cuối cùng bằng phiếu và cùng ngày sinh — luật không quy định tiếp, cần cơ quan có thẩm quyền quyết định.',
  };
  const MINUTES_STATUS = {
    partial: 'Tạm thời (đang kiểm)',
    final: 'Chính thức',
    withdrawn: 'Đã rút (kiểm lại)',
  };
  const OUTCOME = {
    applied: 'đã áp dụng',
    stale: 'cũ',
    duplicate: 'trùng',
    rejected: 'bị từ chối',
  };
  const LEVEL = {
    province: 'Tỉnh, thành phố',
    district: 'Quận, huyện',
    ward: 'Phường, xã',
    commune: 'Phường, xã',
  };
  const CONTEST_LEVEL = {
    national: 'Quốc hội',
    province: 'HĐND cấp tỉnh',
    district: 'HĐND cấp huyện',
    commune: 'HĐND cấp xã',
  };
  const RULE = {
    required: 'Thiếu thông tin bắt buộc',
    type: 'Sai kiểu dữ liệu',
    unknown_field: 'Trường không có trong mẫu',
    id: 'Mã không hợp lệ',
    unknown: 'Không có trong danh mục',
    not_voting: 'Khu vực không bầu trong cuộc bầu cử này',
    candidate: 'Không phải ứng cử viên của đơn vị',
    duplicate_vote: 'Ứng cử viên bị ghi hai lần',
    integer: 'Không phải số nguyên',
    non_negative: 'Số âm',
    range: 'Số quá lớn',
    version: 'Số phiên bản không hợp lệ',
    status: 'Loại biên bản không hợp lệ',
    voted_le_registered: 'Số cử tri đi bầu lớn hơn số cử tri',
    issued_le_registered: 'Số phiếu phát ra lớn hơn số cử tri',
    received_le_issued: 'Số phiếu thu vào lớn hơn số phiếu phát ra',
    valid_plus_invalid_eq_received: 'Phiếu hợp lệ + không hợp lệ khác số phiếu thu vào',
    votes_le_valid: 'Số phiếu của ứng cử viên lớn hơn số phiếu hợp lệ',
    sum_votes_le_valid_times_seats: 'Tổng số phiếu bầu vượt quá phiếu hợp lệ × số đại biểu',
    final_lists_every_candidate: 'Biên bản chính thức thiếu ứng cử viên',
    withdrawn_without_counts: 'Biên bản rút không được ghi số liệu',
    subject: 'Gửi sai kênh của khu vực bỏ phiếu',
    conflict: 'Xung đột: cùng phiên bản nhưng nội dung khác',
    seal: 'Chữ ký số (con dấu) không hợp lệ',
  };

  // ---- state ---------------------------------------------------------------

  const S = {
    election: null,
    ix: null, // indexes over the election, see buildIndex
    results: new Map(), // "C|a|AREA" or "C|u|UNIT" -> latest result
    stations: new Map(), // "C|STATION" -> {current, history}
    stationRejections: new Map(), // STATION -> [rejection]
    rejections: null, // every rejection, when fetched
    status: null, // GET /api/v1/status
    route: null,
    lastUpdate: null,
    appliedSeq: 0,
    live: false,
    tabContest: '',
  };

  const $ = (sel) => document.querySelector(sel);
  const nf = new Intl.NumberFormat('vi-VN');
  const pf = new Intl.NumberFormat('vi-VN', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const num = (n) => (n == null ? '—' : nf.format(n));
  const pct = (a, b) => (b > 0 ? pf.format((100 * a) / b) + '%' : '—');
  const share = (a, b) => (b > 0 ? Math.min(100, (100 * a) / b) : 0);
  const date = (iso) => {
    const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso || '');
    return m ? `${m[3]}/${m[2]}/${m[1]}` : iso || '';
  };
  const clock = (d) => d.toLocaleTimeString('vi-VN', { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  const stamp = (iso) => {
    const d = new Date(iso);
    return isNaN(d) ? iso : `${clock(d)} ${d.toLocaleDateString('vi-VN')}`;
  };

  // h builds an element: h('div', {class: 'x', 'data-testid': 'y'}, children...).
  // The prop w sets data-w, a width in percent applied later through the CSSOM.
  function h(tag, props, ...kids) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v == null || v === false) continue;
        if (k === 'class') e.className = v;
        else if (k === 'w') e.dataset.w = (Math.round(v * 100) / 100).toString();
        else e.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const k of kids.flat(Infinity)) {
      if (k == null || k === false) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }

  // morph makes the live node a look like the detached node b, reusing nodes
  // where tag and data-key agree so that bars animate and scroll stays put.
  function morph(a, b) {
    if (a.nodeType !== b.nodeType || a.nodeName !== b.nodeName ||
      (a.nodeType === 1 && a.getAttribute('data-key') !== b.getAttribute('data-key'))) {
      a.replaceWith(b);
      return;
    }
    if (a.nodeType !== 1) {
      if (a.nodeValue !== b.nodeValue) a.nodeValue = b.nodeValue;
      return;
    }
    for (const { name } of Array.from(a.attributes)) {
      if (name !== 'style' && !b.hasAttribute(name)) a.removeAttribute(name);
    }
    for (const { name, value } of Array.from(b.attributes)) {
      if (a.getAttribute(name) !== value) a.setAttribute(name, value);
    }
    const ac = Array.from(a.childNodes);
    const bc = Array.from(b.childNodes);
    bc.forEach((n, i) => (i < ac.length ? morph(ac[i], n) : a.appendChild(n)));
    for (let i = bc.length; i < ac.length; i++) ac[i].remove();
  }

  function morphInto(container, node) {
    if (container.childNodes.length === 1) morph(container.firstChild, node);
    else container.replaceChildren(node);
    for (const el of container.querySelectorAll('[data-w]')) {
      const w = el.dataset.w + '%';
      if (el.style.width !== w) el.style.width = w;
    }
  }

  // ---- the election's indexes ---------------------------------------------

  function buildIndex(e) {
    const ix = {
      areas: new Map(),
      children: new Map(), // area id ("" for roots) -> [area]
      stations: new Map(),
      stationsOf: new Map(), // ward id -> [station]
      contests: new Map(),
      units: new Map(), // unit id -> {contest, unit}
      candidates: new Map(), // candidate id -> candidate
      stationUnit: new Map(), // contest id -> Map station id -> unit id
      expected: new Map(), // contest id -> Map area id -> stations voting
      areaUnits: new Map(), // contest id -> Map area id -> Set unit id
    };
    for (const a of e.areas || []) {
      ix.areas.set(a.id, a);
      const p = a.parent || '';
      if (!ix.children.has(p)) ix.children.set(p, []);
      ix.children.get(p).push(a);
    }
    // The levels the file declares (GET /api/v1/election, v2): drill down
    // through them; the last is the one stations belong to, named by
    // `area` (v2) or `ward` (v1).
    ix.bottom = (e.levels && e.levels.length) ? e.levels[e.levels.length - 1] : 'ward';
    for (const s of e.stations || []) {
      if (!s.ward) s.ward = s.area;
      ix.stations.set(s.id, s);
      if (!ix.stationsOf.has(s.ward)) ix.stationsOf.set(s.ward, []);
      ix.stationsOf.get(s.ward).push(s);
    }
    for (const c of e.contests || []) {
      ix.contests.set(c.id, c);
      const su = new Map();
      const exp = new Map();
      const au = new Map();
      for (const u of c.units || []) {
        ix.units.set(u.id, { contest: c, unit: u });
        for (const cand of u.candidates || []) ix.candidates.set(cand.id, cand);
        const listed = new Set(u.areas || []);
        for (const s of e.stations || []) {
          if (ancestors(ix, s.ward).some((a) => listed.has(a.id))) su.set(s.id, u.id);
        }
        for (const id of u.stations || []) su.set(id, u.id);
      }
      for (const [sid, uid] of su) {
        const s = ix.stations.get(sid);
        if (!s) continue;
        for (const a of ancestors(ix, s.ward)) {
          exp.set(a.id, (exp.get(a.id) || 0) + 1);
          if (!au.has(a.id)) au.set(a.id, new Set());
          au.get(a.id).add(uid);
        }
      }
      ix.stationUnit.set(c.id, su);
      ix.expected.set(c.id, exp);
      ix.areaUnits.set(c.id, au);
    }
    return ix;
  }

  // ancestors lists an area and every area above it, nearest first.
  function ancestors(ix, id) {
    const out = [];
    for (let a = ix.areas.get(id); a && out.length < 16; a = ix.areas.get(a.parent)) out.push(a);
    return out;
  }

  const expected = (c, area) => S.ix.expected.get(c).get(area) || 0;
  const votingChildren = (c, area) => (S.ix.children.get(area || '') || []).filter((a) => expected(c, a.id) > 0);
  const votingStations = (c, ward) => (S.ix.stationsOf.get(ward) || []).filter((s) => S.ix.stationUnit.get(c).has(s.id));
  const rootAreas = (c) => votingChildren(c, '');

  // ---- routing: #/CONTEST[/area|unit|station/ID | /units | /rejections] ---

  function parseRoute() {
    const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
    const contests = S.election.contests || [];
    let contest = S.ix.contests.has(parts[0]) ? parts[0] : contests.length ? contests[0].id : '';
    let kind = parts[1] || 'area';
    let id = parts[2] || '';
    if (kind === 'area' && !id) {
      const roots = rootAreas(contest);
      id = roots.length === 1 ? roots[0].id : '';
    }
    const ok =
      (kind === 'area' && (id === '' || expected(contest, id) > 0)) ||
      (kind === 'unit' && S.ix.units.has(id) && S.ix.units.get(id).contest.id === contest) ||
      (kind === 'station' && S.ix.stationUnit.get(contest).has(id)) ||
      kind === 'units' || kind === 'rejections';
    if (!ok) {
      const roots = rootAreas(contest);
      kind = 'area';
      id = roots.length === 1 ? roots[0].id : '';
    }
    return { contest, kind, id };
  }

  // contestHref keeps the view when switching contests, where that makes sense.
  function contestHref(c) {
    const r = S.route;
    if (!r) return `#/${c}`;
    if (r.kind === 'units' || r.kind === 'rejections') return `#/${c}/${r.kind}`;
    if (r.kind === 'unit') return `#/${c}/units`;
    if (r.kind === 'station' && S.ix.stationUnit.get(c).has(r.id)) return `#/${c}/station/${r.id}`;
    if (r.kind === 'area' && r.id && expected(c, r.id) > 0) return `#/${c}/area/${r.id}`;
    return `#/${c}`;
  }

  function onRoute() {
    const prev = S.route;
    S.route = parseRoute();
    if (!prev || prev.contest !== S.route.contest) connect(S.route.contest);
    if (!prev || prev.kind !== S.route.kind || prev.id !== S.route.id) window.scrollTo(0, 0);
    fetchForView();
    render();
  }

  // ---- live stream ------------------------------------------------------

  let es = null;
  let retryTimer = 0;
  let retryDelay = 1000;

  function connect(contest) {
    if (es) es.close();
    clearTimeout(retryTimer);
    const src = new EventSource(`${API}/stream?contest=${encodeURIComponent(contest)}`);
    es = src;
    src.addEventListener('open', () => {
      if (es !== src) return;
      retryDelay = 1000;
      setLive(true);
      fetchForView(); // whatever changed while we were away
      fetchStatus();
    });
    src.addEventListener('result', (ev) => {
      if (es !== src) return;
      let r;
      try {
        r = JSON.parse(ev.data);
      } catch (err) {
        return;
      }
      onResult(r);
    });
    src.addEventListener('error', () => {
      if (es !== src) return;
      setLive(false);
      // The browser retries a dropped connection by itself; after an HTTP
      // error (a proxy's 502, a restarting server) it gives up, so we retry.
      if (src.readyState === EventSource.CLOSED) {
        retryTimer = setTimeout(() => {
          if (es === src) connect(contest);
        }, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 15000);
      }
    });
  }

  function setLive(live) {
    S.live = live;
    $('#reconnecting').hidden = live;
    const pill = $('#live-pill');
    pill.dataset.state = live ? 'live' : 'lost';
    pill.textContent = live ? 'Trực tiếp' : 'Mất kết nối';
    pill.title = live ? 'Live: figures update by themselves' : 'Connection lost, reconnecting';
  }

  function onResult(r) {
    const key = r.unit ? `${r.contest}|u|${r.unit}` : `${r.contest}|a|${r.area}`;
    S.results.set(key, r);
    S.lastUpdate = new Date();
    if (r.applied_seq > S.appliedSeq) S.appliedSeq = r.applied_seq;
    const rt = S.route;
    if (rt && !r.unit && r.level === S.ix.bottom && r.contest === rt.contest) {
      const ward = rt.kind === 'station' ? (S.ix.stations.get(rt.id) || {}).ward : rt.kind === 'area' ? rt.id : '';
      if (ward === r.area) later('stations', 400, fetchForView);
    }
    later('status', 1500, fetchStatus);
    scheduleRender();
  }

  const timers = {};
  function later(name, ms, fn) {
    if (timers[name]) return;
    timers[name] = setTimeout(() => {
      timers[name] = 0;
      fn();
    }, ms);
  }

  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(() => {
      renderQueued = false;
      render();
    }, 40);
  }

  // ---- fetches ------------------------------------------------------------

  async function getJSON(path) {
    const resp = await fetch(API + path, { headers: { Accept: 'application/json' } });
    if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
    return resp.json();
  }

  async function fetchStatus() {
    try {
      const st = await getJSON('/status');
      const moved = S.status && S.status.rejected !== st.rejected;
      S.status = st;
      if (st.applied_seq > S.appliedSeq) S.appliedSeq = st.applied_seq;
      if (moved && S.route && (S.route.kind === 'rejections' || S.route.kind === 'station')) fetchForView();
      scheduleRender();
    } catch (err) {
      // the stream's banner already tells the user
    }
  }

  const inflight = new Set();
  async function once(key, fn) {
    if (inflight.has(key)) return;
    inflight.add(key);
    try {
      await fn();
    } catch (err) {
      // keep the last figures; the next event or reconnect fetches again
    } finally {
      inflight.delete(key);
      scheduleRender();
    }
  }

  function fetchStation(c, sid) {
    return once(`st|${c}|${sid}`, async () => {
      S.stations.set(`${c}|${sid}`, await getJSON(`/contests/${encodeURIComponent(c)}/stations/${encodeURIComponent(sid)}`));
    });
  }

  function fetchForView() {
    const r = S.route;
    if (!r) return;
    if (r.kind === 'station') {
      fetchStation(r.contest, r.id);
      once(`rej|${r.id}`, async () => {
        S.stationRejections.set(r.id, await getJSON(`/rejections?station=${encodeURIComponent(r.id)}`));
      });
    } else if (r.kind === 'area' && r.id && S.ix.areas.get(r.id).level === S.ix.bottom) {
      for (const s of votingStations(r.contest, r.id)) fetchStation(r.contest, s.id);
    } else if (r.kind === 'rejections') {
      once('rej', async () => {
        S.rejections = await getJSON('/rejections');
      });
    }
  }

  // ---- building blocks ------------------------------------------------------

  const link = (href, props, ...kids) => h('a', Object.assign({ href }, props), ...kids);
  // docLink points at an export of CONTRACT §8 (a PDF or CSV the server draws).
  const enc = encodeURIComponent;
  const docLink = (href, label, testid) => h('p', { class: 'doc-link small' }, link(href, { 'data-testid': testid, target: '_blank', rel: 'noopener' }, label));
  const hint = (en) => h('small', { class: 'hint', lang: 'en' }, en);

  function statCard(label, en, value, testid, sub, bar) {
    return h('div', { class: 'card stat' },
      h('div', { class: 'stat-label' }, label, ' ', hint(en)),
      h('div', { class: 'stat-value', 'data-testid': testid }, value),
      sub ? h('div', { class: 'stat-sub' }, sub) : null,
      bar || null);
  }

  function progressBar(n, total, kind, label) {
    return h('div', {
      class: `bar ${kind}`, role: 'progressbar', 'aria-label': label,
      'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': n,
    }, h('div', { class: 'fill', w: share(n, total) }));
  }

  // summaryCards: reporting, final, turnout and ballots of one result.
  function summaryCards(r, exp) {
    const rep = r ? r.stations_reporting : 0;
    const fin = r ? r.stations_final : 0;
    const total = r ? r.stations_expected : exp;
    return h('section', { class: 'stats', 'aria-label': 'Tổng hợp' },
      statCard('Tổ bầu cử đã báo cáo', 'Stations reporting',
        [h('span', { 'data-testid': 'reporting-count' }, `${rep}/${total}`), h('span', { class: 'stat-pct' }, pct(rep, total))],
        'stat-reporting', null, progressBar(rep, total, 'reporting', 'Tổ bầu cử đã báo cáo')),
      statCard('Đã có biên bản chính thức', 'Final minutes',
        [h('span', { 'data-testid': 'final-count' }, `${fin}/${total}`), h('span', { class: 'stat-pct' }, pct(fin, total))],
        'stat-final', null, progressBar(fin, total, 'final', 'Đã có biên bản chính thức')),
      statCard('Tỷ lệ cử tri đi bầu', 'Turnout',
        h('span', { 'data-testid': 'turnout' }, r && r.registered ? pct(r.voted, r.registered) : '—'),
        'stat-turnout',
        r && r.registered ? `${num(r.voted)} / ${num(r.registered)} cử tri tại các khu vực đã báo cáo` : 'Chưa có khu vực nào báo cáo',
        progressBar(r ? r.voted : 0, r ? r.registered : 0, 'turnout', 'Tỷ lệ cử tri đi bầu')),
      statCard('Phiếu hợp lệ', 'Valid ballots',
        h('span', { 'data-testid': 'valid' }, r ? num(r.valid) : '—'),
        'stat-valid',
        r ? `Không hợp lệ: ${num(r.invalid)} (${pct(r.invalid, r.received)}) · Thu vào: ${num(r.received)}` : null));
  }

  function statusBadge(status, testid) {
    return h('span', { class: `badge st-${status}`, 'data-testid': testid, 'data-status': status, title: UNIT_STATUS_EN[status] || status },
      UNIT_STATUS[status] || status);
  }

  function minutesBadge(status) {
    if (!status) return h('span', { class: 'badge m-none', 'data-status': 'none' }, 'Chưa báo cáo');
    return h('span', { class: `badge m-${status}`, 'data-status': status }, MINUTES_STATUS[status] || status);
  }

  function section(title, en, ...kids) {
    return h('section', { class: 'block' }, h('h3', { class: 'block-title' }, title, ' ', hint(en)), ...kids);
  }

  function table(cls, head, rows, foot) {
    return h('div', { class: 'table-wrap' },
      h('table', { class: cls },
        h('thead', null, h('tr', null, head.map((c) => h('th', { scope: 'col', class: c[1] || null }, c[0])))),
        h('tbody', null, rows),
        foot ? h('tfoot', null, foot) : null));
  }

  function miniProgress(n, total, kind) {
    return h('div', { class: 'mini' },
      h('span', { class: 'mini-num' }, `${n}/${total}`),
      progressBar(n, total, kind, `${n}/${total}`));
  }

  // candidateList draws the bars of one unit (or one area inside a unit).
  // Bars are on the scale of valid ballots; the dashed line is at 50%.
  function candidateList(cands, valid, marks) {
    return h('div', { class: 'cands' },
      h('div', { class: 'cand-scale', 'aria-hidden': 'true' },
        h('div', null),
        h('div', { class: 'scale-track' }, h('span', { class: 'half-label' }, '50% — quá nửa số phiếu hợp lệ')),
        h('div', null)),
      h('ol', { class: 'cand-list' }, cands.map((c, i) => {
        const m = marks ? marks(c) : null;
        return h('li', {
          class: `cand${m ? ' is-' + m.kind : ''}`, 'data-testid': 'candidate', 'data-key': c.id,
          'data-candidate': c.id, 'data-winner': m ? m.kind : null,
        },
        h('div', { class: 'cand-rank' }, String(i + 1)),
        h('div', { class: 'cand-main' },
          h('div', { class: 'cand-head' },
            h('span', { class: 'cand-name', 'data-testid': 'candidate-name' }, c.name),
            m ? h('span', { class: `badge win-${m.kind}`, 'data-testid': m.testid, 'data-candidate': c.id }, m.label) : null),
          h('div', { class: 'cand-born' }, c.born ? `Sinh ngày ${date(c.born)}` : ''),
          h('div', { class: 'track', title: `${pct(c.votes, valid)} số phiếu hợp lệ` },
            h('div', { class: 'fill', w: share(c.votes, valid) }))),
        h('div', { class: 'cand-num' },
          h('span', { class: 'cand-votes', 'data-testid': 'candidate-votes' }, num(c.votes)),
          h('span', { class: 'cand-pct', 'data-testid': 'candidate-share' }, pct(c.votes, valid))));
      })));
  }

  function unitCard(c, u) {
    const r = S.results.get(`${c.id}|u|${u.id}`);
    const exp = r ? r.stations_expected : 0;
    const winners = r ? r.winners || [] : [];
    const names = winners.map((id) => (S.ix.candidates.get(id) || { name: id }).name);
    const decided = r && r.status !== 'counting';
    return link(`#/${c.id}/unit/${u.id}`, { class: 'card unit-card', 'data-testid': 'unit-card', 'data-unit': u.id, 'data-key': u.id },
      h('div', { class: 'unit-head' },
        h('span', { class: 'unit-name' }, u.name),
        r ? statusBadge(r.status, 'unit-card-status') : h('span', { class: 'badge' }, 'Đang tải…')),
      h('div', { class: 'unit-meta' }, `${u.seats} đại biểu · ${(u.candidates || []).length} ứng cử viên · ${exp} khu vực bỏ phiếu`),
      progressBar(r ? r.stations_final : 0, exp, 'final', 'Đã có biên bản chính thức'),
      h('div', { class: 'unit-meta' }, `Biên bản chính thức: ${r ? r.stations_final : 0}/${exp} · Đã báo cáo: ${r ? r.stations_reporting : 0}/${exp}`),
      names.length
        ? h('div', { class: 'unit-winners' }, h('strong', null, decided ? 'Trúng cử: ' : 'Dự kiến trúng cử: '), names.join(', '))
        : null);
  }

  // ---- views ---------------------------------------------------------------

  function areaView(c, id) {
    const ix = S.ix;
    const area = id ? ix.areas.get(id) : null;
    const kids = votingChildren(c.id, id);
    let r = id ? S.results.get(`${c.id}|a|${id}`) : null;
    if (!id) r = sumResults(kids.map((a) => S.results.get(`${c.id}|a|${a.id}`)));
    const exp = id ? expected(c.id, id) : kids.reduce((n, a) => n + expected(c.id, a.id), 0);
    const head = h('div', { class: 'view-head' },
      h('h2', { 'data-testid': 'view-title' }, area ? area.name : c.name),
      h('p', { class: 'sub' }, area ? `${LEVEL[area.level] || area.level} · ${c.name}` : CONTEST_LEVEL[c.level] || ''),
      area ? docLink(`/api/v1/contests/${enc(c.id)}/areas/${enc(id)}/minutes.pdf`, 'Biên bản tổng kết (PDF)', 'area-pdf') : null,
      docLink(`/api/v1/export/results.csv?contest=${enc(c.id)}`, 'Kết quả cả cuộc bầu cử (CSV)', 'contest-csv'));
    const blocks = [head, summaryCards(r, exp)];

    if (area && area.level === ix.bottom) {
      const rows = votingStations(c.id, id).map((s) => {
        const d = S.stations.get(`${c.id}|${s.id}`);
        const cur = d && d.current;
        const counts = cur && cur.status !== 'withdrawn';
        return h('tr', { 'data-testid': 'station-row', 'data-station': s.id, 'data-key': s.id, 'data-href': `#/${c.id}/station/${s.id}`, class: 'clickable' },
          h('td', null, link(`#/${c.id}/station/${s.id}`, null, s.name), h('div', { class: 'muted small' }, s.id)),
          h('td', { class: 'num' }, num(s.registered)),
          h('td', null, d ? minutesBadge(cur && cur.status) : h('span', { class: 'muted' }, '…')),
          h('td', { class: 'num' }, cur ? String(cur.version) : '—'),
          h('td', { class: 'num' }, counts ? pct(cur.voted, cur.registered) : '—'),
          h('td', { class: 'num' }, counts ? num(cur.valid) : '—'));
      });
      blocks.push(section('Khu vực bỏ phiếu', 'Polling stations',
        table('grid', [['Khu vực bỏ phiếu'], ['Cử tri', 'num'], ['Biên bản'], ['Phiên bản', 'num'], ['Đi bầu', 'num'], ['Phiếu hợp lệ', 'num']], rows)));
    } else if (kids.length) {
      const rows = kids.map((a) => {
        const ar = S.results.get(`${c.id}|a|${a.id}`);
        const e = expected(c.id, a.id);
        return h('tr', { 'data-testid': 'area-row', 'data-area': a.id, 'data-key': a.id, 'data-href': `#/${c.id}/area/${a.id}`, class: 'clickable' },
          h('td', null, link(`#/${c.id}/area/${a.id}`, null, a.name)),
          h('td', null, miniProgress(ar ? ar.stations_reporting : 0, e, 'reporting')),
          h('td', null, miniProgress(ar ? ar.stations_final : 0, e, 'final')),
          h('td', { class: 'num' }, ar && ar.registered ? pct(ar.voted, ar.registered) : '—'),
          h('td', { class: 'num' }, ar ? num(ar.valid) : '—'));
      });
      const foot = r ? h('tr', null,
        h('th', { scope: 'row' }, 'Cộng ', area ? area.name : ''),
        h('td', null, miniProgress(r.stations_reporting, r.stations_expected, 'reporting')),
        h('td', null, miniProgress(r.stations_final, r.stations_expected, 'final')),
        h('td', { class: 'num' }, r.registered ? pct(r.voted, r.registered) : '—'),
        h('td', { class: 'num' }, num(r.valid))) : null;
      const lvl = kids[0].level;
      blocks.push(section(lvl === ix.bottom ? 'Phường, xã trực thuộc' : lvl === 'district' ? 'Quận, huyện trực thuộc' : 'Địa bàn', 'Areas: click to drill down',
        table('grid', [['Địa bàn'], ['Tổ bầu cử đã báo cáo'], ['Biên bản chính thức'], ['Đi bầu', 'num'], ['Phiếu hợp lệ', 'num']], rows, foot)));
    }

    // Candidates' votes here, when the area lies inside one unit.
    const unitIds = id ? Array.from(ix.areaUnits.get(c.id).get(id) || []) : c.units.map((u) => u.id);
    if (r && unitIds.length === 1) {
      const u = ix.units.get(unitIds[0]).unit;
      const cands = u.candidates.map((cd) => ({ id: cd.id, name: cd.name, born: cd.born, votes: (r.votes || {})[cd.id] || 0 }))
        .sort((a, b) => b.votes - a.votes || (a.born < b.born ? -1 : a.born > b.born ? 1 : 0) || (a.id < b.id ? -1 : 1));
      blocks.push(section(`Số phiếu của ứng cử viên tại ${area ? area.name : 'địa bàn'}`, 'Candidates in this area (share of valid ballots)',
        h('p', { class: 'muted' }, 'Kết quả của cả đơn vị bầu cử: ', link(`#/${c.id}/unit/${u.id}`, null, u.name)),
        candidateList(cands, r.valid, null)));
    }
    const units = c.units.filter((u) => unitIds.includes(u.id));
    if (units.length) {
      blocks.push(section('Đơn vị bầu cử', 'Electoral units',
        h('div', { class: 'unit-grid' }, units.map((u) => unitCard(c, u)))));
    }
    return blocks;
  }

  function sumResults(rs) {
    rs = rs.filter(Boolean);
    if (!rs.length) return null;
    const out = { stations_expected: 0, stations_reporting: 0, stations_final: 0, registered: 0, voted: 0, issued: 0, received: 0, valid: 0, invalid: 0, votes: {} };
    for (const r of rs) {
      for (const k of Object.keys(out)) if (typeof out[k] === 'number') out[k] += r[k] || 0;
      for (const [k, v] of Object.entries(r.votes || {})) out.votes[k] = (out.votes[k] || 0) + v;
    }
    return out;
  }

  function unitsView(c) {
    return [
      h('div', { class: 'view-head' },
        h('h2', { 'data-testid': 'view-title' }, 'Đơn vị bầu cử'),
        h('p', { class: 'sub' }, `${c.name} · ${c.units.length} đơn vị, ${c.units.reduce((n, u) => n + u.seats, 0)} đại biểu được bầu`)),
      h('div', { class: 'unit-grid' }, c.units.map((u) => unitCard(c, u))),
    ];
  }

  function unitView(c, uid) {
    const u = S.ix.units.get(uid).unit;
    const r = S.results.get(`${c.id}|u|${uid}`);
    const blocks = [h('div', { class: 'view-head' },
      h('h2', { 'data-testid': 'view-title' }, u.name),
      h('p', { class: 'sub' }, `${c.name} · ${u.seats} đại biểu được bầu · ${(u.candidates || []).length} người ứng cử`),
      docLink(`/api/v1/contests/${enc(c.id)}/units/${enc(uid)}/minutes.pdf`, 'Biên bản xác định kết quả (PDF)', 'unit-pdf'),
      r ? h('div', { class: 'status-line' }, statusBadge(r.status, 'unit-status'),
        h('span', { class: 'muted' }, UNIT_STATUS_NOTE[r.status] || '')) : h('p', { class: 'muted' }, 'Đang tải…'))];
    blocks.push(summaryCards(r, 0));
    if (r) {
      const winners = r.winners || [];
      const counting = r.status === 'counting';
      // In a tie, the tied group is everyone after the winners who passes
      // the bar with the votes of the first of them.
      const next = r.candidates[winners.length];
      const marks = (cd) => {
        if (winners.includes(cd.id)) {
          return counting
            ? { kind: 'provisional', label: 'Dự kiến trúng cử', testid: 'winner' }
            : { kind: 'final', label: 'Trúng cử', testid: 'winner' };
        }
        if (r.status === 'tie' && next && cd.votes === next.votes && cd.born === next.born && cd.votes * 2 > r.valid) {
          return { kind: 'tie', label: 'Bằng phiếu', testid: 'tied' };
        }
        return null;
      };
      blocks.push(section('Kết quả theo ứng cử viên', 'Votes per candidate, share of valid ballots',
        h('p', { class: 'muted' },
          counting
            ? `Đang kiểm phiếu: ${r.stations_final}/${r.stations_expected} khu vực đã có biên bản chính thức. “Dự kiến trúng cử”: người đang có quá nửa số phiếu hợp lệ và đứng trong ${u.seats} vị trí đầu.`
            : `Người trúng cử phải được quá nửa số phiếu hợp lệ (Điều 78). Số người trúng cử: ${winners.length}/${u.seats}.`),
        candidateList(r.candidates || [], r.valid, marks),
        h('p', { class: 'legend muted' },
          h('span', { class: 'legend-line', 'aria-hidden': 'true' }), ' Vạch đứt: 50% số phiếu hợp lệ — ứng cử viên phải vượt qua vạch này. ',
          hint('Dashed line: more than half of the valid ballots is needed to win.'))));
    }
    blocks.push(section('Địa bàn của đơn vị', 'Areas of the unit',
      h('ul', { class: 'chips' },
        (u.areas || []).map((a) => h('li', null, link(`#/${c.id}/area/${a}`, { class: 'chip' }, (S.ix.areas.get(a) || { name: a }).name))),
        (u.stations || []).map((s) => h('li', null, link(`#/${c.id}/station/${s}`, { class: 'chip' }, (S.ix.stations.get(s) || { name: s }).name))))));
    return blocks;
  }

  function stationView(c, sid) {
    const s = S.ix.stations.get(sid);
    const u = S.ix.units.get(S.ix.stationUnit.get(c.id).get(sid)).unit;
    const d = S.stations.get(`${c.id}|${sid}`);
    const cur = d && d.current;
    const blocks = [h('div', { class: 'view-head' },
      h('h2', { 'data-testid': 'view-title' }, s.name),
      h('p', { class: 'sub' }, `${sid} · ${(S.ix.areas.get(s.ward) || { name: s.ward }).name} · ${num(s.registered)} cử tri theo danh sách · `,
        link(`#/${c.id}/unit/${u.id}`, null, u.name)))];
    if (!d) {
      blocks.push(h('p', { class: 'muted' }, 'Đang tải…'));
      return blocks;
    }
    if (!cur) {
      blocks.push(h('div', { class: 'card empty', 'data-testid': 'current-minutes' }, 'Chưa có biên bản. ', hint('No minutes received yet.')));
    } else {
      const rows = [
        ['Cử tri theo danh sách', 'registered'], ['Cử tri đã bỏ phiếu', 'voted'], ['Phiếu phát ra', 'issued'],
        ['Phiếu thu vào', 'received'], ['Phiếu hợp lệ', 'valid'], ['Phiếu không hợp lệ', 'invalid'],
      ];
      const counts = cur.status !== 'withdrawn';
      const votes = Object.entries(cur.votes || {}).sort((a, b) => b[1] - a[1]);
      blocks.push(section('Biên bản hiện hành', 'Current minutes',
        h('div', { class: 'card minutes', 'data-testid': 'current-minutes', 'data-version': cur.version, 'data-status': cur.status },
          h('div', { class: 'status-line' }, minutesBadge(cur.status), h('span', null, `Phiên bản ${cur.version}`),
            cur.reason ? h('span', { class: 'muted' }, `Lý do: ${cur.reason}`) : null),
          counts ? h('div', { class: 'minutes-grid' },
            h('dl', { class: 'figures' }, rows.map(([label, k]) => [h('dt', null, label), h('dd', null, num(cur[k]))]),
              h('dt', null, 'Tỷ lệ đi bầu'), h('dd', null, pct(cur.voted, cur.registered))),
            table('grid compact', [['Ứng cử viên'], ['Số phiếu', 'num'], ['Tỷ lệ', 'num']],
              votes.map(([id, v]) => h('tr', { 'data-key': id },
                h('td', null, (S.ix.candidates.get(id) || { name: id }).name),
                h('td', { class: 'num' }, num(v)),
                h('td', { class: 'num' }, pct(v, cur.valid))))))
            : h('p', { class: 'muted' }, 'Biên bản đã rút: khu vực này tạm không được tính vào kết quả.'))));
    }
    const hist = (d.history || []).slice().reverse();
    blocks.push(section('Lịch sử biên bản', 'History: every submission, newest first',
      table('grid', [['Thứ tự', 'num'], ['Phiên bản', 'num'], ['Loại biên bản'], ['Xử lý']],
        hist.map((x) => h('tr', { 'data-testid': 'history-row', 'data-outcome': x.outcome, 'data-key': String(x.seq) },
          h('td', { class: 'num' }, String(x.seq)),
          h('td', { class: 'num' }, String(x.version)),
          h('td', null, MINUTES_STATUS[x.status] || x.status),
          h('td', null, h('span', { class: `badge o-${x.outcome}` }, OUTCOME[x.outcome] || x.outcome)))))));
    const rej = (S.stationRejections.get(sid) || []).filter((x) => x.contest === c.id);
    if (rej.length) {
      blocks.push(section('Biên bản bị từ chối', 'Rejected minutes of this station', rejectionTable(rej)));
    }
    return blocks;
  }

  function rejectionTable(list) {
    return table('grid rejections', [['Thời gian'], ['Khu vực bỏ phiếu'], ['Cuộc bầu cử'], ['Phiên bản', 'num'], ['Lý do']],
      list.slice().reverse().map((x) => h('tr', { 'data-testid': 'rejection', 'data-station': x.station, 'data-contest': x.contest, 'data-key': String(x.seq) },
        h('td', { class: 'small' }, stamp(x.time), h('div', { class: 'muted' }, `#${x.seq}`)),
        h('td', null, S.ix.contests.has(x.contest) && S.ix.stationUnit.get(x.contest).has(x.station)
          ? link(`#/${x.contest}/station/${x.station}`, null, x.station) : x.station || '—'),
        h('td', null, x.contest || '—'),
        h('td', { class: 'num' }, x.version ? String(x.version) : '—'),
        h('td', { 'data-testid': 'rejection-reason' },
          h('ul', { class: 'reasons' }, (x.errors && x.errors.length ? x.errors : [{ rule: '', message: x.reason }]).map((v) =>
            h('li', null,
              h('strong', null, RULE[v.rule] || v.rule || 'Lý do'),
              v.field ? h('span', { class: 'muted' }, ` (${v.field})`) : null,
              h('div', { class: 'small', lang: 'en' }, v.message))))))));
  }

  function rejectionsView() {
    const list = S.rejections;
    return [
      h('div', { class: 'view-head' },
        h('h2', { 'data-testid': 'view-title' }, 'Biên bản bị từ chối'),
        h('p', { class: 'sub' }, 'Biên bản đã nhận nhưng không được tính, với lý do (mọi cuộc bầu cử). ', hint('Rejected submissions and why.'))),
      list == null ? h('p', { class: 'muted' }, 'Đang tải…')
        : list.length === 0 ? h('div', { class: 'card empty', 'data-testid': 'no-rejections' }, 'Chưa có biên bản nào bị từ chối.')
          : rejectionTable(list),
    ];
  }

  // ---- chrome: tabs, nav, breadcrumb ---------------------------------------

  function crumbs() {
    const r = S.route;
    const c = S.ix.contests.get(r.contest);
    const items = [];
    const areaChain = (id) => ancestors(S.ix, id).reverse().map((a) => [a.name, `#/${c.id}/area/${a.id}`]);
    if (rootAreas(c.id).length > 1) items.push(['Tất cả địa bàn', `#/${c.id}/area`]);
    if (r.kind === 'area') items.push(...areaChain(r.id));
    else if (r.kind === 'station') {
      items.push(...areaChain(S.ix.stations.get(r.id).ward));
      items.push([S.ix.stations.get(r.id).name, '']);
    } else if (r.kind === 'unit') {
      items.push(['Đơn vị bầu cử', `#/${c.id}/units`]);
      items.push([S.ix.units.get(r.id).unit.name, '']);
    } else if (r.kind === 'units') items.push(['Đơn vị bầu cử', '']);
    else if (r.kind === 'rejections') items.push(['Biên bản bị từ chối', '']);
    return h('ol', { class: 'crumbs', id: 'crumbs', 'data-testid': 'breadcrumb', 'aria-label': 'Đường dẫn (breadcrumb)' },
      items.map(([name, href], i) => h('li', { 'data-testid': 'crumb' },
        i === items.length - 1 ? h('span', { 'aria-current': 'page' }, name) : link(href, null, name))));
  }

  function render() {
    if (!S.election || !S.route) return;
    const r = S.route;
    const c = S.ix.contests.get(r.contest);

    morphInto($('#contests'), h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Cuộc bầu cử (contest)' }, S.election.contests.map((x) =>
      link(contestHref(x.id), {
        class: 'tab', role: 'tab', 'aria-selected': x.id === r.contest ? 'true' : 'false',
        'data-testid': 'contest-tab', 'data-contest': x.id,
      }, h('span', { class: 'tab-level' }, CONTEST_LEVEL[x.level] || x.level), h('span', { class: 'tab-name' }, x.name)))));

    if (S.tabContest !== r.contest) {
      // On a phone the tabs scroll sideways; keep the selected one in view.
      S.tabContest = r.contest;
      const sel = document.querySelector('.tab[aria-selected="true"]');
      if (sel) sel.parentElement.scrollLeft = Math.max(0, sel.offsetLeft - sel.parentElement.offsetLeft - 12);
    }

    const rejected = S.status ? S.status.rejected : null;
    const nav = [
      ['Tổng quan', 'Overview', `#/${c.id}`, r.kind === 'area' || r.kind === 'station', 'nav-overview'],
      ['Đơn vị bầu cử', 'Units', `#/${c.id}/units`, r.kind === 'units' || r.kind === 'unit', 'nav-units'],
      ['Biên bản bị từ chối', 'Rejected', `#/${c.id}/rejections`, r.kind === 'rejections', 'nav-rejections'],
    ];
    morphInto($('#views'), h('div', { class: 'view-tabs' }, nav.map(([vi, en, href, on, testid]) =>
      link(href, { class: 'vtab', 'aria-current': on ? 'page' : null, 'data-testid': testid },
        vi, testid === 'nav-rejections' && rejected ? h('span', { class: 'count', 'data-testid': 'rejected-count' }, String(rejected)) : null,
        ' ', hint(en)))));

    const crumbsEl = $('#crumbs');
    morph(crumbsEl, crumbs());

    let blocks;
    if (r.kind === 'area') blocks = areaView(c, r.id);
    else if (r.kind === 'units') blocks = unitsView(c);
    else if (r.kind === 'unit') blocks = unitView(c, r.id);
    else if (r.kind === 'station') blocks = stationView(c, r.id);
    else blocks = rejectionsView();
    morphInto($('#view'), h('div', { class: 'view', 'data-key': `${r.kind}|${r.contest}|${r.id}`, 'data-view': r.kind }, blocks));

    $('#updated').textContent = S.lastUpdate ? `Cập nhật lúc ${clock(S.lastUpdate)}` : 'Chưa có cập nhật';
    $('#seq').textContent = S.appliedSeq ? `Đã xử lý đến biên bản thứ ${num(S.appliedSeq)} (applied seq)` : '';
  }

  // Rows of tables are clickable as a whole; the first cell holds the real link.
  document.addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr[data-href]');
    if (!tr || ev.target.closest('a') || ev.defaultPrevented) return;
    location.hash = tr.dataset.href;
  });

  // ---- start -----------------------------------------------------------------

  async function start() {
    try {
      const e = await getJSON('/election');
      S.election = e;
      S.ix = buildIndex(e);
      $('#election-name').textContent = `${e.name}${e.date ? ' · Ngày bầu cử ' + date(e.date) : ''}`;
      $('#load-error').hidden = true;
      window.addEventListener('hashchange', onRoute);
      onRoute();
      fetchStatus();
      setInterval(fetchStatus, 5000);
    } catch (err) {
      const el = $('#load-error');
      el.hidden = false;
      el.textContent = 'Không tải được danh mục bầu cử, đang thử lại… (could not load the election: ' + err.message + ')';
      setTimeout(start, 3000);
    }
  }
  start();
})();
