// tally live dashboard: plain JavaScript, no framework, no build step.
//
// The page keeps the latest result of every area and electoral unit of the
// selected contest in a map, fed by the server-sent event stream
// (/api/v1/stream?contest=...). Every view is a pure function of that state:
// render() builds the view afresh and morphs it into the page, so figures
// change in place (bars animate) without a reload. Station minutes, history
// and rejections are not streamed; they are fetched when a view needs them
// and fetched again when a result of their ward changes or the server's
// rejection count moves. An area's report (its stations with the times
// their minutes arrived, the warnings, the sums over final minutes only)
// and a unit's final-only sums are fetched the same way when the area's or
// unit's result changes.
//
// Mid-count rule: partial minutes carry the full count of valid ballots but
// only the votes counted so far, so a share over every minutes received is
// too low until the station is final. Shares and provisional winners are
// therefore computed over final minutes only; partial minutes show as
// progress (votes counted so far), and the page says so.
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
    stale: 'bỏ qua: phiên bản cũ hơn bản đang dùng',
    duplicate: 'bỏ qua: trùng bản đã nhận',
    rejected: 'bị từ chối',
  };
  const SOURCE = {
    gateway: 'Từ chối khi tiếp nhận',
    fold: 'Từ chối khi tổng hợp',
  };
  const SOURCE_NOTE = {
    gateway: 'Sai quy tắc ngay khi gửi: không được lưu vào luồng biên bản, không tính vào kết quả.',
    fold: 'Đã lưu vào luồng biên bản nhưng không được tính (xung đột, sai kênh, chữ ký).',
  };
  // Administrative words dropped before a place name in “Kết quả phần …”.
  const PLACE_WORDS = /^(Thành phố|Tỉnh|Quận|Huyện|Thị xã|Phường|Xã|Thị trấn|Đặc khu)\s+/;
  const LEVEL = {
    province: 'Tỉnh, thành phố',
    district: 'Quận, huyện',
    ward: 'Phường, xã',
    commune: 'Xã, phường, đặc khu',
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
    reports: new Map(), // "C|AREA" -> area report (stations, times, warnings, final-only sums)
    finals: new Map(), // "C|UNIT" -> the unit's sums over final minutes only
    rejections: null, // every rejection, when fetched
    status: null, // GET /api/v1/status
    route: null,
    lastUpdate: null,
    appliedSeq: 0,
    live: false,
    snapshot: false, // the current event stream has delivered its first results
    tabContest: '',
  };

  const $ = (sel) => document.querySelector(sel);
  const MAX_REPORT_STATIONS = 5000; // the server's bound on an area report
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
    // v2 files name the bottom level as they like (levels) and a
    // station's area "area" (v1: "ward"); the page says ward for both.
    const levels = e.levels && e.levels.length ? e.levels : ['province', 'district', 'ward'];
    ix.bottom = levels[levels.length - 1];
    for (const s of e.stations || []) {
      if (!s.ward && s.area) s.ward = s.area;
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
    // A new stream starts with every result of the contest: "live" only
    // once those have arrived, so the pill never vouches for 0/183.
    let gotResults = false;
    setLive(false, 'connecting');
    src.addEventListener('open', () => {
      if (es !== src) return;
      retryDelay = 1000;
      // The browser's own reconnection resumes after the last event: only
      // what changed follows, so the figures on the page are current.
      if (gotResults) setLive(true);
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
      if (!gotResults) {
        gotResults = true;
        setLive(true);
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

  function setLive(live, state) {
    S.live = live;
    const connecting = !live && state === 'connecting';
    $('#reconnecting').hidden = live || connecting;
    const pill = $('#live-pill');
    pill.dataset.state = live ? 'live' : connecting ? 'connecting' : 'lost';
    pill.textContent = live ? 'Trực tiếp' : connecting ? 'Đang tải số liệu…' : 'Mất kết nối';
    pill.title = live ? 'Live: figures update by themselves' : connecting ? 'Loading the figures' : 'Connection lost, reconnecting';
  }

  function onResult(r) {
    const key = r.unit ? `${r.contest}|u|${r.unit}` : `${r.contest}|a|${r.area}`;
    S.results.set(key, r);
    S.lastUpdate = new Date();
    if (r.applied_seq > S.appliedSeq) S.appliedSeq = r.applied_seq;
    const rt = S.route;
    if (rt && !r.unit && r.level === S.ix.bottom && r.contest === rt.contest) {
      const ward = rt.kind === 'station' ? (S.ix.stations.get(rt.id) || {}).ward : '';
      if (ward === r.area) later('stations', 400, fetchForView);
    }
    if (rt && r.contest === rt.contest && ((rt.kind === 'area' && !r.unit && r.area === rt.id) || (rt.kind === 'unit' && r.unit === rt.id))) {
      later('report', 700, fetchForView);
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
      const moved = S.status && (S.status.rejected !== st.rejected || S.status.refused !== st.refused);
      S.status = st;
      if (st.applied_seq > S.appliedSeq) S.appliedSeq = st.applied_seq;
      const r = S.route;
      const report = r && r.kind === 'area' ? S.reports.get(`${r.contest}|${r.id}`) : null;
      const stale = report && report.applied_seq < st.applied_seq;
      if ((moved && r && r.kind !== 'units') || stale) fetchForView();
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
    } else if (r.kind === 'area' && r.id && expected(r.contest, r.id) <= MAX_REPORT_STATIONS) {
      const { contest, id } = r;
      once(`rep|${contest}|${id}`, async () => {
        S.reports.set(`${contest}|${id}`, await getJSON(`/contests/${encodeURIComponent(contest)}/areas/${encodeURIComponent(id)}/report`));
      });
    } else if (r.kind === 'unit') {
      const { contest, id } = r;
      once(`fin|${contest}|${id}`, async () => {
        S.finals.set(`${contest}|${id}`, await getJSON(`/contests/${encodeURIComponent(contest)}/units/${encodeURIComponent(id)}/final`));
      });
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
          h('span', { class: 'cand-pct', 'data-testid': 'candidate-share' }, pct(c.votes, valid)),
          c.progress > 0 ? h('span', { class: 'cand-progress', 'data-testid': 'candidate-progress', title: 'votes in partial minutes, not in the share' }, `+${num(c.progress)} đang kiểm`) : null));
      })));
  }

  // partOf names the part of a unit this file holds, when the unit has
  // polling stations outside it (v2 stations_outside > 0): such a unit's
  // winners are decided by its board over the whole unit, never here.
  function partOf(u) {
    if (!(u.stations_outside > 0)) return '';
    const names = (u.areas || []).map((a) => (S.ix.areas.get(a) || { name: a }).name);
    for (const sid of u.stations || []) {
      const st = S.ix.stations.get(sid);
      const w = st && S.ix.areas.get(st.ward || st.area);
      if (w && !names.includes(w.name)) names.push(w.name);
    }
    return names.map((n) => n.replace(PLACE_WORDS, '')).join(', ');
  }

  function unitBadge(r, u, testid) {
    const part = partOf(u);
    if (part) {
      return h('span', { class: 'badge st-part', 'data-testid': testid, 'data-status': 'part', title: 'results of the part of the unit in this file' },
        `Kết quả phần ${part}`);
    }
    return statusBadge(r.status, testid);
  }

  // ROUND names a unit's round (CONTRACT §2 v2) when it is not the first.
  const ROUND = { additional: 'Bầu thêm', re_election: 'Bầu cử lại' };

  function roundBadge(r, u, testid) {
    const round = (r && r.round) || u.round || 'first';
    if (!ROUND[round]) return null;
    return h('span', { class: 'badge round', 'data-testid': testid, 'data-round': round }, ROUND[round]);
  }

  // unitsText says an area result's units summary (CONTRACT §4 v2) in
  // words: how many of the contest's units lying wholly in the area are
  // decided, then every other status that has any, then seats filled (with
  // the provisional winners of units still counting, as the API sums them).
  function unitsText(s) {
    if (!s.total) return 'Không có đơn vị bầu cử nào nằm trọn trong địa bàn này.';
    const rest = [
      [s.counting, 'đang kiểm phiếu'],
      [s.tie, 'bằng phiếu'],
      [s.additional_election, 'bầu thêm'],
      [s.re_election, 'bầu cử lại'],
    ].filter(([n]) => n > 0).map(([n, what]) => `${num(n)} ${what}`);
    return `${num(s.decided)}/${num(s.total)} đơn vị đã xác định kết quả${rest.length ? ', ' + rest.join(', ') : ''}` +
      ` · ${num(s.winners)}/${num(s.seats)} đại biểu trúng cử${s.counting ? ' hoặc dự kiến trúng cử' : ''}.`;
  }

  // unitsSummary: the area result's summary, or for the whole contest one
  // made the same way from its unit results once all are in.
  function unitsSummary(c, r, id) {
    let s = r && r.units;
    if (!id) {
      const rs = c.units.map((u) => S.results.get(`${c.id}|u|${u.id}`));
      if (rs.some((x) => !x)) return null;
      s = { total: rs.length, counting: 0, decided: 0, tie: 0, additional_election: 0, re_election: 0, seats: 0, winners: 0 };
      c.units.forEach((u, i) => {
        s[rs[i].status] = (s[rs[i].status] || 0) + 1;
        s.seats += u.seats;
        s.winners += (rs[i].winners || []).length;
      });
    }
    if (!s) return null;
    return h('p', {
      class: 'card units-summary', 'data-testid': 'units-summary', 'data-total': s.total, 'data-decided': s.decided,
      'data-seats': s.seats, 'data-winners': s.winners,
    }, unitsText(s));
  }

  function unitCard(c, u) {
    const r = S.results.get(`${c.id}|u|${u.id}`);
    const exp = r ? r.stations_expected : 0;
    const winners = r ? r.winners || [] : [];
    const names = winners.map((id) => (S.ix.candidates.get(id) || { name: id }).name);
    // Winners only once decided: mid-count figures are in the unit's view,
    // over final minutes only.
    const decided = r && r.status !== 'counting' && !partOf(u);
    return link(`#/${c.id}/unit/${u.id}`, { class: 'card unit-card', 'data-testid': 'unit-card', 'data-unit': u.id, 'data-key': u.id },
      h('div', { class: 'unit-head' },
        h('span', { class: 'unit-name' }, u.name),
        r ? unitBadge(r, u, 'unit-card-status') : h('span', { class: 'badge' }, 'Đang tải…'),
        roundBadge(r, u, 'unit-card-round')),
      h('div', { class: 'unit-meta' }, `${u.seats} đại biểu · ${(u.candidates || []).length} ứng cử viên · ${exp} khu vực bỏ phiếu`),
      progressBar(r ? r.stations_final : 0, exp, 'final', 'Đã có biên bản chính thức'),
      h('div', { class: 'unit-meta' }, `Biên bản chính thức: ${r ? r.stations_final : 0}/${exp} · Đã báo cáo: ${r ? r.stations_reporting : 0}/${exp}`),
      decided && names.length
        ? h('div', { class: 'unit-winners' }, h('strong', null, 'Trúng cử: '), names.join(', '), emptySeats(c, u, r) ? ` (${winners.length}/${u.seats}, ghế còn lại để trống)` : '')
        : null);
  }

  // emptySeats: a decided unit with fewer winners than seats keeps the
  // empty seats empty (People's Council above two-thirds, or after an
  // additional election: Điều 79).
  function emptySeats(c, u, r) {
    return r && r.status === 'decided' && (r.winners || []).length < u.seats;
  }

  // finalRanking ranks a unit's candidates over final minutes only (votes
  // descending, older first, then id) and marks the provisional winners by
  // the rule of Điều 78: more than half of the valid ballots, at most seats.
  function finalRanking(u, f) {
    const cands = (u.candidates || []).map((cd) => ({ id: cd.id, name: cd.name, born: cd.born, votes: (f.votes || {})[cd.id] || 0 }))
      .sort((a, b) => b.votes - a.votes || (a.born < b.born ? -1 : a.born > b.born ? 1 : 0) || (a.id < b.id ? -1 : 1));
    const winners = cands.filter((cd) => f.valid > 0 && cd.votes * 2 > f.valid).slice(0, u.seats).map((cd) => cd.id);
    return { cands, winners };
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
    const blocks = [head, summaryCards(r, exp), unitsSummary(c, r, id)];
    const rep = id ? S.reports.get(`${c.id}|${id}`) : null;
    const byStation = new Map(rep ? rep.stations.map((x) => [x.station, x]) : []);
    if (id && exp > MAX_REPORT_STATIONS) {
      blocks.push(section('Cảnh báo cần kiểm tra', 'Warnings', h('div', { class: 'card empty' },
        `Địa bàn có ${num(exp)} khu vực bỏ phiếu: chọn một địa bàn trực thuộc để xem cảnh báo, khu vực chưa báo cáo và tiến độ theo thời gian.`)));
    } else if (id) blocks.push(warningsPanel(c, area, rep));

    if (area && area.level === ix.bottom) {
      const rows = votingStations(c.id, id).map((s) => {
        const x = byStation.get(s.id);
        const counts = x && (x.status === 'partial' || x.status === 'final');
        return h('tr', { 'data-testid': 'station-row', 'data-station': s.id, 'data-key': s.id, 'data-href': `#/${c.id}/station/${s.id}`, class: 'clickable' },
          h('td', { class: 'name' }, link(`#/${c.id}/station/${s.id}`, null, s.name), h('div', { class: 'muted small' }, s.id)),
          h('td', { class: 'num opt' }, num(s.registered)),
          h('td', null, x ? minutesBadge(x.status) : h('span', { class: 'muted' }, '…'),
            x && x.last_time ? h('div', { class: 'muted small', 'data-testid': 'station-last' }, clock(new Date(x.last_time))) : null),
          h('td', { class: 'num opt' }, x && x.version ? String(x.version) : '—'),
          h('td', { class: 'num', 'data-testid': 'station-turnout' }, counts ? pct(x.voted, x.registered) : '—'),
          h('td', { class: 'num', 'data-testid': 'station-valid' }, counts ? num(x.valid) : '—'));
      });
      blocks.push(section('Khu vực bỏ phiếu', 'Polling stations; the time is when the last minutes arrived',
        table('grid stations', [['Khu vực bỏ phiếu'], ['Cử tri', 'num opt'], ['Biên bản (lúc)'], ['Phiên bản', 'num opt'], ['Đi bầu', 'num'], ['Hợp lệ', 'num']], rows)));
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
    if (rep && !(area && area.level === ix.bottom)) blocks.push(pendingList(c, rep));
    if (rep) blocks.push(timeline(rep, exp));

    // Candidates' votes here, when the area lies inside one unit.
    const unitIds = id ? Array.from(ix.areaUnits.get(c.id).get(id) || []) : c.units.map((u) => u.id);
    if (r && r.votes && unitIds.length === 1) {
      const u = ix.units.get(unitIds[0]).unit;
      // The mid-count rule of the unit view: over final minutes only until
      // every station of the area is final.
      const allFinal = r.stations_final === r.stations_expected;
      const fin = allFinal ? { stations_final: r.stations_final, valid: r.valid, votes: r.votes } : rep ? rep.final : null;
      if (fin) {
        const cands = finalRanking(u, fin).cands.map((cd) => Object.assign({}, cd, { progress: ((r.votes || {})[cd.id] || 0) - cd.votes }));
        blocks.push(section(`Số phiếu của ứng cử viên tại ${area ? area.name : 'địa bàn'}`, 'Candidates in this area (share of valid ballots)',
          h('p', { class: 'muted' }, 'Kết quả của cả đơn vị bầu cử: ', link(`#/${c.id}/unit/${u.id}`, null, u.name)),
          allFinal ? null : h('p', { class: 'muted', 'data-testid': 'share-rule' },
            `Tỷ lệ tính trên ${num(fin.stations_final)}/${num(r.stations_expected)} khu vực đã có biên bản chính thức; số phiếu trong biên bản tạm thời ghi thêm là “đang kiểm”.`),
          candidateList(cands, fin.valid, null)));
      }
    }
    const units = c.units.filter((u) => unitIds.includes(u.id));
    if (units.length) {
      blocks.push(section('Đơn vị bầu cử', 'Electoral units',
        h('div', { class: 'unit-grid' }, units.map((u) => unitCard(c, u)))));
    }
    return blocks;
  }

  // ---- officials' panels: warnings, stations not yet in, timeline --------

  const WARN_TEXT = {
    W1: (w) => `Tỷ lệ đi bầu ${pf.format(w.value)}%: số cử tri đã bỏ phiếu bằng hoặc vượt số cử tri trong danh sách.`,
    W2: (w) => `Phiếu không hợp lệ ${pf.format(w.value)}% số phiếu thu vào, cao hơn nhiều so với ${pf.format(w.limit)}% của cả địa bàn.`,
    W3: (w) => `Biên bản ghi ${num(w.value)} cử tri trong danh sách, danh mục bầu cử ghi ${num(w.limit)}.`,
    W4: (w) => `Biên bản đã bị rút ${num(w.value)} lần.`,
    W5: (w) => `${num(w.value)} biên bản bị từ chối ngay khi gửi (sai quy tắc, không được lưu).`,
    W6: (w) => `${num(w.value)} biên bản bị từ chối khi tổng hợp.`,
  };
  const WARN_TITLE = {
    W1: 'Tỷ lệ đi bầu từ 100%',
    W2: 'Phiếu không hợp lệ cao bất thường',
    W3: 'Số cử tri khác danh mục',
    W4: 'Rút biên bản nhiều lần',
    W5: 'Bị từ chối khi gửi',
    W6: 'Bị từ chối khi tổng hợp',
  };

  function stationName(id) {
    return (S.ix.stations.get(id) || { name: id }).name;
  }

  function warningsPanel(c, area, rep) {
    const title = 'Cảnh báo cần kiểm tra';
    const en = 'Warnings: to check, they never change a result';
    if (!rep) return section(title, en, h('p', { class: 'muted' }, 'Đang tải…'));
    if (!rep.warnings.length) {
      return section(title, en, h('div', { class: 'card empty', 'data-testid': 'no-warnings' }, 'Không có cảnh báo.'));
    }
    const wardOf = (sid) => (S.ix.areas.get((S.ix.stations.get(sid) || {}).ward) || { name: '' }).name;
    return section(title, en,
      h('ul', { class: 'warnings card', 'data-testid': 'warnings' }, rep.warnings.map((w) => h('li', {
        class: 'warning', 'data-testid': 'warning', 'data-code': w.code, 'data-station': w.station, 'data-key': `${w.code}|${w.station}`,
      },
      h('span', { class: `badge w-${w.code}`, title: WARN_TITLE[w.code] || w.code }, w.code),
      h('div', { class: 'warning-main' },
        h('div', null, link(`#/${c.id}/station/${w.station}`, { 'data-testid': 'warning-station' }, stationName(w.station)),
          h('span', { class: 'muted small' }, ` · ${wardOf(w.station)} · ${WARN_TITLE[w.code] || ''}`)),
        h('div', { class: 'small' }, (WARN_TEXT[w.code] || (() => w.message))(w),
          w.code === 'W5' || w.code === 'W6' ? [' ', link(`#/${c.id}/rejections`, null, 'Xem lý do')] : null))))));
  }

  // pendingList: the area's stations with no counted minutes, then those
  // not final, each with the time its last minutes arrived.
  function pendingList(c, rep) {
    const none = rep.stations.filter((x) => x.status !== 'partial' && x.status !== 'final');
    const partial = rep.stations.filter((x) => x.status === 'partial');
    const LIMIT = 50; // the rest are counted, not listed
    const rows = [...none, ...partial].slice(0, LIMIT).map((x) => h('tr', {
      'data-testid': 'pending-row', 'data-station': x.station, 'data-status': x.status || 'none', 'data-key': x.station,
      'data-href': `#/${c.id}/station/${x.station}`, class: 'clickable',
    },
    h('td', { class: 'name' }, link(`#/${c.id}/station/${x.station}`, null, stationName(x.station)),
      h('div', { class: 'muted small' }, (S.ix.areas.get((S.ix.stations.get(x.station) || {}).ward) || { name: '' }).name)),
    h('td', null, minutesBadge(x.status)),
    h('td', { class: 'small' }, x.last_time ? stamp(x.last_time) : 'Chưa gửi')));
    const more = none.length + partial.length - rows.length;
    return section(`Chưa báo cáo: ${num(none.length)} · Chưa có biên bản chính thức: ${num(partial.length)}`, 'Stations not reported or not final; time of their last minutes',
      h('span', { hidden: true, 'data-testid': 'pending', 'data-none': none.length, 'data-partial': partial.length }),
      rows.length
        ? table('grid pending', [['Khu vực bỏ phiếu'], ['Biên bản'], ['Biên bản cuối lúc']], rows)
        : h('div', { class: 'card empty', 'data-testid': 'no-pending' }, 'Mọi khu vực đã có biên bản chính thức.'),
      more > 0 ? h('p', { class: 'muted' }, `… và ${num(more)} khu vực khác.`) : null);
  }

  // timeline draws stations reporting and final over time: each station
  // counts from when its current count was first applied (reporting) and
  // when its current final minutes were applied (final).
  function timeline(rep, exp) {
    const rep_t = rep.stations.map((x) => x.reported_time).filter(Boolean).map((t) => Date.parse(t)).sort((a, b) => a - b);
    const fin_t = rep.stations.map((x) => x.final_time).filter(Boolean).map((t) => Date.parse(t)).sort((a, b) => a - b);
    const title = 'Tiến độ theo thời gian';
    const en = 'Stations reporting and final over time';
    if (!rep_t.length) return section(title, en, h('div', { class: 'card empty', 'data-testid': 'timeline' }, 'Chưa có khu vực nào báo cáo.'));
    const t0 = rep_t[0];
    const t1 = Math.max(rep_t[rep_t.length - 1], fin_t.length ? fin_t[fin_t.length - 1] : 0, t0 + 60000);
    const W = 600;
    const H = 150;
    const x = (t) => ((t - t0) / (t1 - t0)) * W;
    const y = (n) => H - (n / Math.max(exp, 1)) * H;
    const steps = (ts) => {
      let d = `M0,${H}`;
      ts.forEach((t, i) => {
        d += ` L${x(t).toFixed(1)},${y(i).toFixed(1)} L${x(t).toFixed(1)},${y(i + 1).toFixed(1)}`;
      });
      return d + ` L${W},${y(ts.length).toFixed(1)}`;
    };
    const NS = 'http://www.w3.org/2000/svg';
    const svg = (tag, attrs) => {
      const e = document.createElementNS(NS, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
      return e;
    };
    const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', class: 'chart', role: 'img', 'aria-label': `${rep_t.length} khu vực đã báo cáo, ${fin_t.length} đã có biên bản chính thức` });
    chart.append(svg('line', { x1: 0, y1: y(exp), x2: W, y2: y(exp), class: 'chart-max' }));
    chart.append(svg('path', { d: steps(rep_t), class: 'chart-reporting', 'data-testid': 'timeline-reporting' }));
    chart.append(svg('path', { d: steps(fin_t), class: 'chart-final', 'data-testid': 'timeline-final' }));
    const hm = (t) => new Date(t).toLocaleTimeString('vi-VN', { hour: '2-digit', minute: '2-digit', hour12: false });
    return section(title, en,
      h('div', { class: 'card timeline', 'data-testid': 'timeline', 'data-reporting': rep_t.length, 'data-final': fin_t.length },
        h('div', { class: 'chart-legend small' },
          h('span', { class: 'key k-reporting' }, `Đã báo cáo: ${num(rep_t.length)}/${num(exp)}`),
          h('span', { class: 'key k-final' }, `Biên bản chính thức: ${num(fin_t.length)}/${num(exp)}`)),
        chart,
        h('div', { class: 'chart-axis small muted' }, h('span', null, hm(t0)), h('span', null, hm(t1)))));
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
    const part = partOf(u);
    const note = part
      ? `Đơn vị bầu cử còn ${num(u.stations_outside)} khu vực bỏ phiếu ngoài tệp này: đây chỉ là kết quả phần ${part}. Người trúng cử do Ban bầu cử xác định trên toàn đơn vị.`
      : r ? UNIT_STATUS_NOTE[r.status] || '' : '';
    const blocks = [h('div', { class: 'view-head' },
      h('h2', { 'data-testid': 'view-title' }, u.name),
      h('p', { class: 'sub' }, `${c.name} · ${u.seats} đại biểu được bầu · ${(u.candidates || []).length} người ứng cử`),
      docLink(`/api/v1/contests/${enc(c.id)}/units/${enc(uid)}/minutes.pdf`, 'Biên bản xác định kết quả (PDF)', 'unit-pdf'),
      r ? h('div', { class: 'status-line' }, unitBadge(r, u, 'unit-status'), roundBadge(r, u, 'unit-round'),
        h('span', { class: 'muted', 'data-testid': 'unit-note' }, note)) : h('p', { class: 'muted' }, 'Đang tải…'))];
    blocks.push(summaryCards(r, 0));
    if (r) {
      // While counting, or for a part of a unit, figures over final
      // minutes only; once every station is final both agree.
      const midCount = r.status === 'counting' || part;
      const f = S.finals.get(`${c.id}|${uid}`);
      let cands;
      let valid;
      let winners;
      let marks;
      let explain;
      if (midCount) {
        const fin = f || { stations_final: 0, valid: 0, votes: {} };
        const ranked = finalRanking(u, fin);
        const soFar = new Map((r.candidates || []).map((cd) => [cd.id, cd.votes]));
        cands = ranked.cands.map((cd) => Object.assign({}, cd, { progress: (soFar.get(cd.id) || 0) - cd.votes }));
        valid = fin.valid;
        winners = part ? [] : ranked.winners;
        marks = (cd) => (winners.includes(cd.id) ? { kind: 'provisional', label: 'Dự kiến trúng cử', testid: 'winner' } : null);
        const partial = r.stations_reporting - r.stations_final;
        explain = h('div', { class: 'rule-note', 'data-testid': 'share-rule' },
          h('p', null, h('strong', null, `Tỷ lệ tính trên ${num(fin.stations_final)}/${num(r.stations_expected)} khu vực đã có biên bản chính thức`),
            ` (${num(fin.valid)} phiếu hợp lệ).`),
          h('p', null, partial > 0
            ? `${num(partial)} khu vực đang kiểm (biên bản tạm thời) chưa được tính vào tỷ lệ: biên bản tạm thời ghi đủ số phiếu hợp lệ nhưng mới có một phần số phiếu bầu, tính chung sẽ làm tỷ lệ thấp hơn thực tế. Số phiếu đã kiểm được ghi thêm dưới mỗi người (“+… đang kiểm”).`
            : 'Biên bản tạm thời (đang kiểm) không được tính vào tỷ lệ.'),
          part ? null : h('p', null, `“Dự kiến trúng cử”: người được quá nửa số phiếu hợp lệ của các khu vực đã có biên bản chính thức và đứng trong ${u.seats} vị trí đầu (Điều 78). Kết quả chỉ chính thức khi mọi khu vực đã có biên bản chính thức.`));
      } else {
        cands = r.candidates || [];
        valid = r.valid;
        winners = r.winners || [];
        // In a tie, the tied group is everyone after the winners who passes
        // the bar with the votes of the first of them.
        const next = cands[winners.length];
        marks = (cd) => {
          if (winners.includes(cd.id)) return { kind: 'final', label: 'Trúng cử', testid: 'winner' };
          if (r.status === 'tie' && next && cd.votes === next.votes && cd.born === next.born && cd.votes * 2 > r.valid) {
            return { kind: 'tie', label: 'Bằng phiếu', testid: 'tied' };
          }
          return null;
        };
        let seatsNote = '';
        if (emptySeats(c, u, r)) {
          seatsNote = r.round === 'additional'
            ? ` ${u.seats - winners.length} ghế còn thiếu để trống: không bầu thêm lần thứ hai (Điều 79).`
            : ` ${u.seats - winners.length} ghế còn thiếu để trống, không bầu thêm: Hội đồng nhân dân chỉ bầu thêm khi số người trúng cử chưa đạt hai phần ba số đại biểu được bầu (Điều 79).`;
        }
        explain = h('p', { class: 'muted', 'data-testid': 'seats-note' },
          `Người trúng cử phải được quá nửa số phiếu hợp lệ (Điều 78). Số người trúng cử: ${winners.length}/${u.seats}.${seatsNote}`);
      }
      blocks.push(section('Kết quả theo ứng cử viên', 'Votes per candidate, share of valid ballots',
        explain,
        candidateList(cands, valid, marks),
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
    blocks.push(section('Lịch sử biên bản', 'History: every submission, newest first, with the time it arrived',
      table('grid', [['Nhận lúc'], ['Phiên bản', 'num'], ['Loại biên bản'], ['Xử lý']],
        hist.map((x) => h('tr', { 'data-testid': 'history-row', 'data-outcome': x.outcome, 'data-key': String(x.seq) },
          h('td', { class: 'small', 'data-testid': 'history-time' }, x.time ? stamp(x.time) : '—', h('div', { class: 'muted' }, `#${x.seq}`)),
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
    const contestName = (id) => (S.ix.contests.get(id) || { name: id || '—' }).name;
    return table('grid rejections', [['Thời gian'], ['Khu vực bỏ phiếu'], ['Cuộc bầu cử'], ['Phiên bản', 'num'], ['Lý do']],
      list.map((x, i) => [x, i]).reverse().map(([x, i]) => h('tr', {
        'data-testid': 'rejection', 'data-station': x.station, 'data-contest': x.contest, 'data-source': x.source || 'fold',
        'data-key': x.seq ? `f${x.seq}` : `g${i}|${x.time}`,
      },
      h('td', { class: 'small' }, stamp(x.time),
        h('div', null, h('span', { class: `badge src-${x.source || 'fold'}`, 'data-testid': 'rejection-source', title: SOURCE_NOTE[x.source || 'fold'] }, SOURCE[x.source || 'fold'] || x.source)),
        x.seq ? h('div', { class: 'muted' }, `#${x.seq}`) : null),
      h('td', null, S.ix.contests.has(x.contest) && S.ix.stationUnit.get(x.contest).has(x.station)
        ? link(`#/${x.contest}/station/${x.station}`, { 'data-testid': 'rejection-station' }, stationName(x.station))
        : h('span', { 'data-testid': 'rejection-station' }, S.ix.stations.has(x.station) ? stationName(x.station) : x.station || '—'),
      h('div', { class: 'muted small' }, x.station || '')),
      h('td', { 'data-testid': 'rejection-contest' }, contestName(x.contest)),
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
        h('p', { class: 'sub' }, 'Biên bản không được tính, với lý do (mọi cuộc bầu cử): bị từ chối ngay khi gửi (sai quy tắc, không được lưu vào luồng biên bản) hoặc khi tổng hợp. ', hint('Rejected submissions and why: refused at the gateway or rejected by the fold.'))),
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
    keepTabInView();

    const rejected = S.status ? S.status.rejected + (S.status.refused || 0) : null;
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
    const seqEl = $('#seq');
    seqEl.textContent = S.lastUpdate ? `Cập nhật lúc ${clock(S.lastUpdate)}` : '';
    seqEl.title = S.appliedSeq ? `applied_seq ${S.appliedSeq}` : '';
  }

  // keepTabInView scrolls the contest tabs (a sideways strip on a phone) so
  // that the selected one shows whole.
  function keepTabInView() {
    const sel = document.querySelector('.tab[aria-selected="true"]');
    if (!sel) return;
    const strip = sel.parentElement;
    const a = sel.getBoundingClientRect();
    const b = strip.getBoundingClientRect();
    if (a.left < b.left) strip.scrollLeft -= b.left - a.left + 12;
    else if (a.right > b.right) strip.scrollLeft += a.right - b.right + 12;
  }
  window.addEventListener('resize', () => later('tabs', 100, keepTabInView));

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
