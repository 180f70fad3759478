/*
 * dom.js - building elements and formatting numbers for the dashboard.
 *
 * h(tag, attrs, ...children) makes an element: attrs.class, attrs.text,
 * on<event> functions become listeners, everything else an attribute
 * (never a "style" attribute: the server's Content-Security-Policy forbids
 * inline styles). Children are nodes, strings or arrays of them; null and
 * false are skipped. Text always goes in as text, never as HTML.
 */

export function h(tag, attrs = {}, ...children) {
    const el = tag.includes(':')
        ? document.createElementNS('http://www.w3.org/2000/svg', tag.split(':')[1])
        : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.setAttribute('class', v);
        else if (k === 'text') el.textContent = v;
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'value' && 'value' in el) el.value = v;
        else if (k === 'checked' || k === 'selected' || k === 'disabled') el[k] = !!v;
        else el.setAttribute(k, v === true ? '' : String(v));
    }
    append(el, children);
    return el;
}

function append(el, children) {
    for (const c of children) {
        if (c === null || c === undefined || c === false) continue;
        if (Array.isArray(c)) append(el, c);
        else el.append(c instanceof Node ? c : String(c));
    }
}

/* Replace everything inside el. */
export function fill(el, ...children) {
    el.replaceChildren();
    append(el, children);
    return el;
}

let idSeq = 0;
export function uid(prefix = 'id') {
    idSeq += 1;
    return `${prefix}-${idSeq}`;
}

/* A labelled form control: returns {row, input}. */
export function field(label, input, hint) {
    if (!input.id) input.id = uid('f');
    const hintEl = hint ? h('small', { class: 'hint', id: `${input.id}-hint`, text: hint }) : null;
    if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
    const err = h('small', { class: 'field-error', id: `${input.id}-err`, 'aria-live': 'polite' });
    const row = h('div', { class: 'field' }, h('label', { for: input.id, text: label }), input, hintEl, err);
    return { row, input, err };
}

export function fmtScore(x, digits = 4) {
    if (x === null || x === undefined || Number.isNaN(x)) return '–';
    return Number(x).toFixed(digits);
}

export function fmtNum(x, digits = 3) {
    if (x === null || x === undefined || Number.isNaN(x)) return '–';
    const a = Math.abs(x);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return Number(x).toExponential(2);
    return String(Number(Number(x).toFixed(digits)));
}

export function fmtSeconds(s) {
    if (s === null || s === undefined || Number.isNaN(s)) return '–';
    if (s < 0.001) return `${Math.round(s * 1e6)} µs`;
    if (s < 1) return `${Number((s * 1000).toPrecision(2))} ms`;
    if (s < 60) return `${s.toFixed(1)} s`;
    const m = Math.floor(s / 60);
    const rest = Math.round(s - m * 60);
    if (m < 60) return `${m} min ${rest} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function fmtBytes(n) {
    if (n === null || n === undefined) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let v = n;
    while (v >= 1024 && i < units.length - 1) {
        v /= 1024;
        i += 1;
    }
    return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function fmtDate(iso) {
    if (!iso) return '–';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function shortId(id) {
    return id ? id.slice(0, 8) : '';
}

/* A compact one-line view of a parameter object. */
export function fmtParams(params) {
    if (!params || typeof params !== 'object') return '';
    const parts = Object.entries(params)
        .filter(([k]) => k !== 'members')
        .map(([k, v]) => `${k}=${typeof v === 'number' ? fmtNum(v) : JSON.stringify(v)}`);
    if (params.members) parts.push(`${params.members.length} members`);
    return parts.length ? parts.join(', ') : 'defaults';
}

/* A table inside a horizontally scrollable, focusable region. */
export function tableWrap(label, table) {
    return h('div', { class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: '0' }, table);
}
