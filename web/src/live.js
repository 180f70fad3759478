/*
 * live.js - keeping a job page current without reloading it.
 *
 * Two ways, chosen by what the server has (features.json):
 *  - events: GET /v1/jobs/{id}/events as Server-Sent Events, read with
 *    fetch() and a streamed body (EventSource cannot send the
 *    Authorization header) and parsed here; every event (trial_started,
 *    trial_progress, trial_succeeded, trial_failed, new_best, job_state)
 *    triggers a refresh a moment later, and a dropped stream reconnects
 *    with Last-Event-ID so no event is missed.
 *  - polling: every POLL_MS, conditional GETs (If-None-Match) of the job,
 *    its trials and its leaderboard; a 304 costs the server almost nothing.
 * Either way the page gets the same {job, trials, leaderboard} snapshots,
 * and watching ends once the job has finished and nothing runs.
 */
import { features, getFresh, session } from './api.js';

const POLL_MS = 1500;
const SAFETY_MS = 10000;  /* with events: a refresh now and then all the same */
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

export function isFinal(job) {
    return !!job && FINAL.has(job.state) && !(job.progress && job.progress.running > 0);
}

/* Server-Sent Events, as the HTML standard defines the stream: fields
 * event, data (lines joined with \n), id; ':' starts a comment; a blank
 * line ends an event. push() takes text as it arrives, in any pieces. */
export class SseParser {
    constructor() {
        this.buf = '';
        this.reset();
    }

    reset() {
        this.type = '';
        this.data = [];
        this.id = null;
    }

    push(text) {
        const out = [];
        this.buf += text;
        for (;;) {
            const m = /\r\n|\n|\r/.exec(this.buf);
            /* A lone \r at the very end may be the first half of \r\n. */
            if (!m || (m[0] === '\r' && m.index === this.buf.length - 1)) break;
            const line = this.buf.slice(0, m.index);
            this.buf = this.buf.slice(m.index + m[0].length);
            if (line === '') {
                if (this.data.length || this.type) {
                    out.push({ type: this.type || 'message', data: this.data.join('\n'), id: this.id });
                }
                this.reset();
                continue;
            }
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            const name = colon < 0 ? line : line.slice(0, colon);
            let value = colon < 0 ? '' : line.slice(colon + 1);
            if (value.startsWith(' ')) value = value.slice(1);
            if (name === 'event') this.type = value;
            else if (name === 'data') this.data.push(value);
            else if (name === 'id' && !value.includes('\0')) this.id = value;
        }
        return out;
    }
}

/* Watch job jobId. onUpdate({job, trials, leaderboard}) after each change;
 * onMode('events' | 'polling' | 'finished'); onError(err) when a refresh
 * fails (watching goes on). Returns stop(). */
export function watchJob(jobId, { onUpdate, onMode = () => {}, onError = () => {} }) {
    const ctrl = new AbortController();
    const base = `/v1/jobs/${encodeURIComponent(jobId)}`;
    let stopped = false;
    let lastJob = null;
    let timer = null;
    let kickTimer = null;
    let lastEventId = null;
    let refreshing = null;

    async function refresh() {
        if (refreshing) return refreshing;
        refreshing = (async () => {
            try {
                const [job, trials, board] = await Promise.all([
                    getFresh(base, ctrl.signal),
                    getFresh(`${base}/trials`, ctrl.signal),
                    getFresh(`${base}/leaderboard`, ctrl.signal),
                ]);
                lastJob = job.data;
                if (job.changed || trials.changed || board.changed) {
                    onUpdate({ job: job.data, trials: trials.data.items || [], leaderboard: board.data });
                }
            } catch (err) {
                if (!stopped && err.name !== 'AbortError') onError(err);
            } finally {
                refreshing = null;
            }
            return lastJob;
        })();
        return refreshing;
    }

    function stop() {
        if (stopped) return;
        stopped = true;
        clearTimeout(timer);
        clearTimeout(kickTimer);
        ctrl.abort();
    }

    function finish() {
        if (stopped) return;
        onMode('finished');
        stop();
    }

    /* Refresh soon, once for a burst of events. */
    function kick() {
        if (kickTimer || stopped) return;
        kickTimer = setTimeout(async () => {
            kickTimer = null;
            if (isFinal(await refresh())) finish();
        }, 150);
    }

    async function poll() {
        onMode('polling');
        while (!stopped) {
            const job = await refresh();
            if (isFinal(job)) return finish();
            await new Promise((resolve) => {
                timer = setTimeout(resolve, POLL_MS);
            });
        }
    }

    /* One connection to the event stream. Resolves to 'ended' (the
     * server closed it), or 'unsupported' (not an event stream). */
    async function streamOnce() {
        const headers = { Authorization: `Bearer ${session.key}`, Accept: 'text/event-stream' };
        if (lastEventId !== null) headers['Last-Event-ID'] = lastEventId;
        const resp = await fetch(`${base}/events`, { headers, signal: ctrl.signal, cache: 'no-store' });
        const type = resp.headers.get('Content-Type') || '';
        if (!resp.ok || !type.startsWith('text/event-stream') || !resp.body) {
            if (resp.status === 401) session.signOut();
            return 'unsupported';
        }
        onMode('events');
        const parser = new SseParser();
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
            const { value, done } = await reader.read();
            if (done) return 'ended';
            for (const ev of parser.push(value)) {
                if (ev.id !== null) lastEventId = ev.id;
                kick();
                if (ev.type === 'job_state') {
                    try {
                        if (FINAL.has(JSON.parse(ev.data).state)) kick();
                    } catch {
                        /* a job_state without JSON still triggers the refresh */
                    }
                }
            }
        }
    }

    async function stream() {
        let failures = 0;
        const safety = setInterval(async () => {
            if (isFinal(await refresh())) finish();
        }, SAFETY_MS);
        ctrl.signal.addEventListener('abort', () => clearInterval(safety));
        while (!stopped) {
            let outcome;
            try {
                outcome = await streamOnce();
                failures = 0;
            } catch (err) {
                if (stopped) return;
                outcome = 'error';
                failures += 1;
            }
            if (outcome === 'unsupported' || failures > 3) {
                clearInterval(safety);
                return poll();
            }
            const job = await refresh();
            if (isFinal(job)) return finish();
            await new Promise((resolve) => {
                timer = setTimeout(resolve, 1000 * Math.max(1, failures));
            });
        }
    }

    (async () => {
        const job = await refresh();
        if (stopped) return;
        if (isFinal(job)) return finish();
        const f = await features();
        if (stopped) return;
        /* sessionStorage "podium.live" = "poll" forces polling (to compare). */
        if (f.events && sessionStorage.getItem('podium.live') !== 'poll') stream();
        else poll();
    })();

    return stop;
}
