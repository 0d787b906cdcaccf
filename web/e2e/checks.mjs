// The check runner the end-to-end files share. `check(name, fn)` runs one check (an async
// function that throws to fail) and prints `PASS name (N ms)` or `FAIL name: first line of the
// error`; one failing check never stops the others. `assert(cond, msg)` throws `msg` unless
// `cond`. `screenshotOf(locator, path)` saves a picture of an element the page may redraw
// meanwhile. `finish(label)` prints `LABEL: N passed, N failed` (the line run.sh sums up) and
// ends the process with status 1 when any check failed, else 0.

const results = [];

export async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`PASS ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${e && e.message ? e.message.split("\n")[0] : e}`);
  }
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

export async function screenshotOf(locator, path) {
  // A live page replaces some elements when new data comes (the sweep's facts on each run's
  // end); one found just before such a redraw is detached by the time it is captured, so the
  // capture is tried again on the element found afresh.
  for (let attempt = 1; ; attempt++) {
    try {
      await locator.screenshot({ path });
      return;
    } catch (e) {
      if (attempt >= 3 || !String(e && e.message).includes("not attached")) throw e;
    }
  }
}

export function finish(label) {
  const failed = results.filter((r) => !r[1]).length;
  console.log(`${label}: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
