/*
 * ui.js - what every view shares: a passing message (toast), moving to
 * another page, and an error shown in place of what failed to load.
 */
import { ApiError } from './api.js';
import { h } from './dom.js';

export function toast(text, kind = 'info') {
    const el = document.getElementById('toast');
    el.textContent = text;
    el.dataset.kind = kind;
    el.classList.add('shown');
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => el.classList.remove('shown'), 4000);
}

/* Go to a page (a #/... hash); the router in app.js renders it. */
export function go(hash) {
    if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
    else location.hash = hash;
}

export function errorBox(err) {
    const p = err instanceof ApiError ? err.problem : {};
    const list = Array.isArray(p.errors) ? h('ul', {}, p.errors.map((e) => h('li', { text: `${e.field}: ${e.detail}` }))) : null;
    return h('div', { class: 'alert', role: 'alert' },
        h('strong', { text: p.title || 'Something went wrong' }), ' ',
        h('span', { text: err.message || String(err) }),
        list,
        p.request_id ? h('small', { class: 'muted', text: ` (request ${p.request_id})` }) : null);
}

/* A state as a badge: text and a class for its colour. */
export function stateBadge(state) {
    return h('span', { class: `badge state-${state}`, text: state });
}
