/*
 * dashboard.mjs - the dashboard in a real browser (headless Chromium driven
 * by playwright-core) against a real podium-server, podium-scheduler and
 * PostgreSQL, which tests/integration/test_dashboard.c starts and passes
 * in the environment:
 *
 *   PODIUM_URL            the server, e.g. http://127.0.0.1:PORT
 *   PODIUM_KEY            an admin API key
 *   PODIUM_SCHEDULER_PID  the scheduler, stopped (SIGSTOP): it is resumed
 *                         once the job page shows the queued job, so the
 *                         page is seen filling in without a reload
 *   PODIUM_SCREENSHOTS    where the screenshots go (desktop and phone)
 *   PODIUM_CHROMIUM       the browser (default /usr/bin/chromium)
 *
 * It signs in, uploads tests/data/tabular/iris.csv by dropping it on the
 * drop zone, starts a job from the form, watches the leaderboard fill in,
 * sorts it, opens a trial, downloads the best model (its bytes must equal
 * GET /v1/models/{id}/artifact), predicts, opens the team leaderboard,
 * exports it and walks it a page at a time, uploads
 * tests/data/images/digits8x8.zip and sees its sample thumbnails load,
 * then walks the same pages at a phone's width. Any console
 * error or page error fails it. Exit status 0 only when every step passed.
 */
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(join(root, 'web/package.json'));
const { chromium } = require('playwright-core');

const url = process.env.PODIUM_URL;
const key = process.env.PODIUM_KEY;
const schedPid = Number(process.env.PODIUM_SCHEDULER_PID || 0);
const shots = resolve(process.env.PODIUM_SCREENSHOTS || join(root, 'build/test-screenshots'));
const browserPath = process.env.PODIUM_CHROMIUM || '/usr/bin/chromium';
const irisPath = join(root, 'tests/data/tabular/iris.csv');
const digitsPath = join(root, 'tests/data/images/digits8x8.zip');

if (!url || !key) {
    console.error('dashboard: PODIUM_URL and PODIUM_KEY must be set');
    process.exit(2);
}

const problems = [];   /* console errors and page errors, from every page */
let step = 'start';
const t0 = Date.now();
function log(msg) {
    console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
}
function check(cond, what) {
    if (!cond) throw new Error(`${step}: ${what}`);
}

function watch(page, label) {
    page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`${label} console error: ${m.text()} (${m.location().url || ''})`);
    });
    page.on('pageerror', (e) => problems.push(`${label} page error: ${e.message}`));
}

async function shot(page, name) {
    const file = join(shots, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    log(`screenshot ${file}`);
}

async function apiGet(path) {
    const r = await fetch(url + path, { headers: { Authorization: `Bearer ${key}` } });
    check(r.ok, `GET ${path} answered ${r.status}`);
    return r;
}

/* Every form control has a label a screen reader can read. */
async function checkLabels(page) {
    const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
        .filter((el) => !el.hidden && el.type !== 'hidden')
        .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !(el.textContent || '').trim())
        .map((el) => el.outerHTML.slice(0, 80)));
    check(unlabelled.length === 0, `controls without a label: ${unlabelled.join(' | ')}`);
}

/* The page does not scroll sideways (tables scroll inside their region). */
async function checkNoSideScroll(page) {
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(over <= 1, `the page is ${over}px wider than the viewport`);
}

async function signIn(page) {
    await page.goto(url + '/');
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Data sets', level: 1 }).waitFor();
}

async function desktop(browser) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    watch(page, 'desktop');
    page.setDefaultTimeout(20000);

    step = 'sign in';
    await page.goto(url + '/');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await checkLabels(page);
    await shot(page, 'desktop-1-sign-in');
    /* A wrong key is refused in words, not with a page error. */
    await page.getByLabel('API key').fill('pdm_' + '0'.repeat(64));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That key was not accepted.').waitFor();
    problems.splice(0, problems.length, ...problems.filter((p) => !p.includes('status of 401')));
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Data sets', level: 1 }).waitFor();
    check(await page.evaluate(() => sessionStorage.getItem('podium.api_key')) === key, 'the key is not in sessionStorage');
    check(await page.evaluate(() => localStorage.length) === 0, 'something was put in localStorage');
    log('signed in');

    step = 'upload';
    await page.getByLabel('Name (optional)').fill('iris-browser');
    const progressSeen = page.evaluate(() => new Promise((done) => {
        const bar = document.querySelector('.card progress');
        new MutationObserver(() => {
            if (!bar.hidden && Number(bar.value) === 100) done(true);
        }).observe(bar, { attributes: true, attributeFilter: ['hidden', 'value'] });
        setTimeout(() => done(false), 15000);
    }));
    /* Drop the file on the drop zone, as a person dragging it would. */
    const bytes = readFileSync(irisPath).toString('base64');
    const dt = await page.evaluateHandle((b64) => {
        const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const t = new DataTransfer();
        t.items.add(new File([data], 'iris.csv', { type: 'text/csv' }));
        return t;
    }, bytes);
    await page.dispatchEvent('#dropzone', 'dragenter', { dataTransfer: dt });
    await page.dispatchEvent('#dropzone', 'drop', { dataTransfer: dt });
    await page.getByRole('heading', { name: 'iris-browser', level: 1 }).waitFor();
    check(await progressSeen, 'the progress bar did not reach 100%');
    const dsId = page.url().split('/').pop();
    log(`uploaded data set ${dsId}`);

    step = 'profile';
    await page.getByRole('heading', { name: 'Columns' }).waitFor();
    const histograms = await page.locator('table.columns svg.spark').count();
    check(histograms === 4, `expected 4 histograms (numeric columns), saw ${histograms}`);
    check(await page.locator('table.columns tr.is-target').innerText().then((t) => t.includes('species')), 'the target is not marked');
    check(await page.getByLabel('Target').inputValue() === 'species', 'the target does not default to the suggested one');
    await checkLabels(page);
    await shot(page, 'desktop-2-dataset');

    step = 'start job';
    await page.getByLabel('Most trials').fill('6');
    await page.getByLabel('Trials at once').fill('2');
    await page.getByLabel('Time budget (seconds)').fill('60');
    await page.getByLabel('Metric').selectOption('accuracy');
    await page.getByRole('button', { name: 'Start job' }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    const jobId = page.url().split('/').pop();
    await page.evaluate(() => {
        window.__sameDocument = true;
    });
    await page.getByRole('heading', { name: /^Job / }).waitFor();
    await page.getByText('No model has finished yet').waitFor();
    log(`job ${jobId} shown while queued`);
    await shot(page, 'desktop-3-job-queued');

    step = 'leaderboard fills in';
    let jobGets = 0;
    page.on('request', (r) => {
        if (r.url().endsWith(`/v1/jobs/${jobId}`) || r.url().includes(`/v1/jobs/${jobId}/events`)) jobGets += 1;
    });
    if (schedPid) process.kill(schedPid, 'SIGCONT');
    const rows = page.locator('#job-leaderboard tbody tr');
    await rows.first().waitFor({ timeout: 60000 });
    await page.locator('.job-head .badge', { hasText: 'succeeded' }).waitFor({ timeout: 60000 });
    await page.locator('#live-mode', { hasText: 'finished' }).waitFor();
    const n = await rows.count();
    check(n >= 6, `the leaderboard has ${n} rows, expected at least 6`);
    check(await page.evaluate(() => window.__sameDocument === true), 'the page was reloaded');
    check(jobGets >= 1, 'the page did not fetch the job again');
    check(await page.locator('#job-leaderboard tr.best').count() === 1, 'the best model is not highlighted');
    const job = await (await apiGet(`/v1/jobs/${jobId}`)).json();
    check(job.state === 'succeeded', `job state ${job.state}`);
    check(await page.locator('#job-leaderboard tr.best').getAttribute('data-model') === job.best.model_id, 'the highlighted row is not the best model');
    log(`leaderboard filled in: ${n} rows, best ${job.best.family} ${job.best.score}`);

    step = 'charts';
    await page.locator('#best-title ~ figure canvas').first().waitFor();
    /* The best model's curve is shown at first (if it reports one); ticking
     * gradient boosting, which reports its loss by iteration, adds its own. */
    const gbmBox = page.locator('#job-leaderboard tbody tr', { hasText: 'gbm' }).first().locator('input[type=checkbox]');
    await gbmBox.check();
    await page.locator('#curves-title ~ figure .u-legend', { hasText: 'gbm' }).waitFor();
    await page.locator('#curves-title ~ figure canvas').first().waitFor();

    step = 'sort';
    await page.locator('button[data-sort="score"]').click();
    check(await page.locator('th[aria-sort="ascending"] button').innerText() === 'Score', 'sorting did not mark the column');
    const scores = await page.locator('#job-leaderboard tbody tr td.num:nth-child(4)').allInnerTexts();
    const sorted = [...scores].map(Number).sort((a, b) => a - b);
    check(JSON.stringify(scores.map(Number)) === JSON.stringify(sorted), `not sorted ascending: ${scores}`);
    await page.locator('button[data-sort="score"]').click();
    check(await page.locator('th[aria-sort="descending"] button').innerText() === 'Score', 'the second click did not reverse the order');
    check(await page.locator('#nas-title, #lr-title').count() === 0, 'NAS or LR-finder sections without data');
    await checkLabels(page);
    await shot(page, 'desktop-4-job-done');

    step = 'trial';
    await page.locator('#job-leaderboard tr.best a', { hasText: 'Details' }).click();
    await page.getByRole('heading', { name: /^Trial \d+:/ }).waitFor();
    check(page.url().endsWith(`#/trials/${job.best.model_id}`), 'the trial page is not the best model\'s');
    await page.getByRole('heading', { name: 'Cross-validation' }).waitFor();

    step = 'download';
    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download model' }).click()]);
    const got = readFileSync(await dl.path());
    const want = Buffer.from(await (await apiGet(`/v1/models/${job.best.model_id}/artifact`)).arrayBuffer());
    check(got.length > 0 && got.equals(want), `the download (${got.length} bytes) differs from the artifact (${want.length} bytes)`);
    log(`downloaded ${dl.suggestedFilename()}: ${got.length} bytes, equal to the artifact`);

    step = 'predict';
    const rowsText = page.getByLabel('Rows as CSV, with a header line');
    await page.waitForFunction(() => document.querySelector('form.predict textarea')?.value.includes('sepal'));
    check(!(await rowsText.inputValue()).includes('species'), 'the sample rows still carry the target');
    await page.getByRole('button', { name: 'Predict', exact: true }).click();
    await page.locator('table.predictions tbody tr').nth(2).waitFor();
    const first = await page.locator('table.predictions tbody tr th').first().innerText();
    check(first === 'setosa', `the first iris row was predicted as ${first}`);
    await checkLabels(page);
    await shot(page, 'desktop-5-trial');

    step = 'guarded sections';
    /* No job carries a NAS genotype or an LR finder yet: draw the sections
     * from data of the shapes they accept, on this page. */
    const drawn = await page.evaluate(async () => {
        const t = await import('./trial.js');
        const g = t.genotypeSection({
            normal: [['sep_conv_3x3', 0], ['skip_connect', 1], ['max_pool_3x3', 0], ['sep_conv_5x5', 2]],
            normal_concat: [2, 3],
        });
        const lr = t.lrFindSection({ lrs: [1e-5, 1e-4, 1e-3, 1e-2, 1e-1], losses: [2.3, 2.2, 1.5, 1.1, 3.0], suggestion: 1e-3 });
        document.querySelector('main').append(g, lr.el);
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        return {
            nodes: g.querySelectorAll('.node').length,
            edges: g.querySelectorAll('line.edge:not(.concat)').length,
            canvas: !!lr.el.querySelector('canvas'),
            suggestion: lr.el.textContent.includes('0.001'),
        };
    });
    check(drawn.nodes === 5 && drawn.edges === 4, `the NAS cell drew ${drawn.nodes} nodes and ${drawn.edges} edges`);
    check(drawn.canvas && drawn.suggestion, 'the LR finder chart was not drawn');
    await shot(page, 'desktop-8-guarded-sections');

    step = 'team leaderboard';
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Leaderboards' }).click();
    await page.getByLabel('Data set').selectOption(dsId);
    await page.locator('#team-leaderboard tbody tr').first().waitFor();
    const teamRows = await page.locator('#team-leaderboard tbody tr').count();
    check(teamRows >= n, `the team leaderboard has ${teamRows} rows, the job had ${n}`);
    const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    const csvText = readFileSync(await csv.path(), 'utf8');
    check(csvText.startsWith('rank,model_id,'), `the export is not the CSV leaderboard: ${csvText.slice(0, 60)}`);
    check(csvText.trim().split('\n').length === teamRows + 1, 'the export does not have a line per model');
    await checkLabels(page);
    await shot(page, 'desktop-6-team-leaderboard');
    // A page at a time: with 2 models a page (the first request rewritten
    // on its way to the real server; `next` keeps the limit), "Show more"
    // walks the whole board, in the export's order, each model once.
    const csvIds = csvText.trim().split('\n').slice(1).map((l) => l.split(',')[1]);
    const boardUrl = /\/v1\/leaderboards\?/;
    await page.route(boardUrl, (route) => {
        const u = new URL(route.request().url());
        if (!u.searchParams.has('limit') && !u.searchParams.has('cursor')) u.searchParams.set('limit', '2');
        return route.continue({ url: u.toString() });
    });
    await page.reload();
    await page.locator('#team-leaderboard tbody tr').first().waitFor();
    check(await page.locator('#team-leaderboard tbody tr').count() === 2, 'the first page does not have 2 rows');
    for (let clicks = 0; await page.locator('#more-models').isVisible() && clicks < 200; clicks++) {
        const before = await page.locator('#team-leaderboard tbody tr').count();
        await page.locator('#more-models').click();
        await page.waitForFunction((b) => document.querySelectorAll('#team-leaderboard tbody tr').length > b, before);
    }
    const shownIds = await page.locator('#team-leaderboard tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.model));
    check(JSON.stringify(shownIds) === JSON.stringify(csvIds),
        `"Show more" did not walk the board in the export's order: ${shownIds.length} rows, ${csvIds.length} in the export`);
    const shownText = await page.locator('#team-board-shown').innerText();
    check(shownText.includes(`${csvIds.length} of ${csvIds.length}`), `the page says "${shownText}" after the last page`);
    await page.unroute(boardUrl);

    step = 'jobs list';
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
    // the list replaces the leaderboard, whose rows link to the same job
    await page.getByRole('heading', { name: 'Jobs', level: 1, exact: true }).waitFor();
    await page.getByRole('main').getByRole('link', { name: `Job ${jobId.slice(0, 8)}` }).first().waitFor();
    await shot(page, 'desktop-7-jobs');

    step = 'image set thumbnails';
    /* Uploaded through the API (the drop zone was tried above): the page
     * shows each class's sample images, fetched with the key. */
    const up = await fetch(`${url}/v1/datasets?name=digits-browser`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/zip' },
        body: readFileSync(digitsPath),
    });
    check(up.status === 201, `uploading digits8x8.zip answered ${up.status}`);
    const digits = await up.json();
    await page.goto(`${url}/#/datasets/${digits.id}`);
    await page.getByRole('heading', { name: 'Samples' }).waitFor();
    /* the first one: thumbnails load one at a time, so "some has loaded"
     * may be a later one while the first is still on its way */
    await page.waitForFunction(() => {
        const i = document.querySelector('img.thumb');
        return i !== null && i.classList.contains('thumb-loaded') && i.complete;
    }, null, { timeout: 15000 });
    const thumb = await page.locator('img.thumb').first().evaluate((i) => ({ w: i.naturalWidth, alt: i.alt }));
    check(thumb.w === 8 && thumb.alt.startsWith('Class 0: '), `the first thumbnail is ${thumb.w} px wide, alt "${thumb.alt}"`);
    await checkNoSideScroll(page);
    await shot(page, 'desktop-9-image-set');
    log(`image set ${digits.id}: thumbnails shown`);

    await context.close();
    return { dsId, jobId, bestId: job.best.model_id };
}

async function phone(browser, ids) {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    watch(page, 'phone');
    page.setDefaultTimeout(20000);
    step = 'phone: sign in';
    await signIn(page);
    await checkNoSideScroll(page);
    await shot(page, 'phone-1-datasets');
    const pages = [
        ['phone-2-dataset', `#/datasets/${ids.dsId}`, 'Columns'],
        ['phone-3-job', `#/jobs/${ids.jobId}`, 'Leaderboard'],
        ['phone-4-trial', `#/trials/${ids.bestId}`, 'Cross-validation'],
        ['phone-5-team-leaderboard', `#/leaderboards/${ids.dsId}`, /models?$/],
    ];
    for (const [name, hash, heading] of pages) {
        step = `phone: ${name}`;
        await page.goto(url + '/' + hash);
        await page.getByRole('heading', { name: heading }).first().waitFor();
        await page.waitForTimeout(300);   /* charts draw on the next frame */
        await checkNoSideScroll(page);
        await shot(page, name);
    }
    step = 'keyboard';
    /* A new page puts the keyboard on its heading; from there Tab follows
     * the reading order, and the skip link comes before the header's. */
    await page.goto(url + '/#/datasets');
    await page.getByRole('heading', { name: 'Data sets', level: 1 }).waitFor();
    await page.waitForFunction(() => document.activeElement.tagName === 'H1', null, { timeout: 5000 });
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement.name) === 'name', 'Tab from the heading does not reach the upload\'s name');
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement.id) === 'upload-file', 'the file input does not come next');
    await page.focus('a.brand');
    await page.keyboard.press('Shift+Tab');
    check(await page.evaluate(() => document.activeElement.className) === 'skip-link', 'the skip link is not first');
    await context.close();
}

async function main() {
    rmSync(shots, { recursive: true, force: true });
    mkdirSync(shots, { recursive: true });
    const browser = await chromium.launch({
        executablePath: browserPath,
        headless: true,
        args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
    });
    let failed = false;
    try {
        const ids = await desktop(browser);
        await phone(browser, ids);
    } catch (err) {
        failed = true;
        console.error(`FAILED at step "${step}": ${err.message}`);
        for (const ctx of browser.contexts()) {
            for (const p of ctx.pages()) {
                await p.screenshot({ path: join(shots, 'failure.png'), fullPage: true }).catch(() => {});
            }
        }
    } finally {
        await browser.close();
    }
    if (problems.length) {
        failed = true;
        console.error('console or page errors:');
        for (const p of problems) console.error(`  ${p}`);
    }
    console.log(`screenshots: ${shots}`);
    if (failed) process.exit(1);
    log('dashboard: every step passed');
}

const deadline = setTimeout(() => {
    console.error(`FAILED: still at step "${step}" after 110 s`);
    process.exit(1);
}, 110000);
main().then(() => clearTimeout(deadline), (err) => {
    console.error(err);
    process.exit(1);
});
