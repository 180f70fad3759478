/*
 * api.js - the dashboard's side of Podium's REST API (api/openapi.yaml).
 *
 * The API key lives in sessionStorage: it is gone when the browser tab
 * closes, and it is sent only as "Authorization: Bearer" to this origin.
 * Every request bypasses the browser's HTTP cache (cache: 'no-store'), so a
 * conditional GET (getFresh) sees the server's own 304. Errors come back
 * as ApiError carrying the problem+json the server sent (detail, field,
 * errors). A 401 signs the page out.
 */

const KEY_NAME = 'podium.api_key';
const listeners = new Set();

export const session = {
    get key() {
        return sessionStorage.getItem(KEY_NAME) || '';
    },
    signIn(key) {
        sessionStorage.setItem(KEY_NAME, key);
    },
    signOut() {
        sessionStorage.removeItem(KEY_NAME);
        for (const fn of listeners) fn();
    },
    onSignOut(fn) {
        listeners.add(fn);
    },
};

export class ApiError extends Error {
    constructor(status, problem) {
        super(problem?.detail || problem?.title || `HTTP ${status}`);
        this.status = status;
        this.problem = problem || {};
    }
}

function authHeaders(extra = {}) {
    return { Authorization: `Bearer ${session.key}`, ...extra };
}

async function failure(resp) {
    let problem = null;
    const type = resp.headers.get('Content-Type') || '';
    if (type.includes('json')) {
        try {
            problem = await resp.json();
        } catch {
            problem = null;
        }
    }
    if (resp.status === 401) session.signOut();
    return new ApiError(resp.status, problem);
}

/* One request. json: a value sent as application/json. raw: a body sent as
 * is with contentType. Returns the parsed JSON, null for 204, or the
 * Response itself when asResponse. */
export async function api(path, { method = 'GET', json, raw, contentType, accept, signal, asResponse } = {}) {
    const headers = authHeaders();
    let body;
    if (json !== undefined) {
        body = JSON.stringify(json);
        headers['Content-Type'] = 'application/json';
    } else if (raw !== undefined) {
        body = raw;
        if (contentType) headers['Content-Type'] = contentType;
    }
    if (accept) headers.Accept = accept;
    const resp = await fetch(path, { method, headers, body, signal, cache: 'no-store' });
    if (!resp.ok) throw await failure(resp);
    if (asResponse) return resp;
    if (resp.status === 204) return null;
    return resp.json();
}

/* Conditional GET: the last ETag seen for the path goes out as
 * If-None-Match; a 304 gives back the data kept from before. Resolves to
 * {data, changed}. Routes without ETags simply answer 200 every time. */
const etags = new Map();
export async function getFresh(path, signal) {
    const kept = etags.get(path);
    const headers = authHeaders();
    if (kept) headers['If-None-Match'] = kept.etag;
    const resp = await fetch(path, { headers, signal, cache: 'no-store' });
    if (resp.status === 304 && kept) return { data: kept.data, changed: false };
    if (!resp.ok) throw await failure(resp);
    const data = await resp.json();
    const etag = resp.headers.get('ETag');
    if (etag) etags.set(path, { etag, data });
    else etags.delete(path);
    return { data, changed: true };
}

/* Upload a file as multipart/form-data with XMLHttpRequest, whose upload
 * events give the progress bar (fetch has none). onProgress(sent, total). */
export function uploadDataset(file, name, onProgress) {
    return new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open('POST', '/v1/datasets');
        xhr.setRequestHeader('Authorization', `Bearer ${session.key}`);
        xhr.responseType = 'json';
        xhr.upload.addEventListener('progress', (e) => {
            if (e.lengthComputable) onProgress(e.loaded, e.total);
        });
        xhr.addEventListener('load', () => {
            if (xhr.status === 201) resolve(xhr.response);
            else {
                if (xhr.status === 401) session.signOut();
                reject(new ApiError(xhr.status, xhr.response));
            }
        });
        xhr.addEventListener('error', () => reject(new ApiError(0, { detail: 'the upload was interrupted' })));
        const form = new FormData();
        if (name) form.append('name', name);
        form.append('file', file, file.name);
        xhr.send(form);
    });
}

/* Fetch path (with the key) and hand its bytes to the browser as a file
 * download named filename. Resolves to the number of bytes. */
export async function download(path, filename, accept) {
    const resp = await api(path, { accept, asResponse: true });
    const blob = await resp.blob();
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = filename;
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    return blob.size;
}

/* What optional API parts this server has (static.h: /features.json). */
let featuresPromise = null;
export function features() {
    if (!featuresPromise) {
        featuresPromise = fetch('features.json', { cache: 'no-store' })
            .then((r) => (r.ok ? r.json() : {}))
            .catch(() => ({}));
    }
    return featuresPromise;
}
