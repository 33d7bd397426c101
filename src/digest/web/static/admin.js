// Import progress: poll the job while it runs, move the progress bar, reload when it is done.
(() => {
  const box = document.getElementById("import-status");
  if (!box || !box.dataset.running) return;
  const bar = document.getElementById("import-progress");
  const tick = async () => {
    try {
      const answer = await fetch(box.dataset.progressUrl, { credentials: "same-origin" });
      if (answer.ok) {
        const job = await answer.json();
        bar.max = Math.max(job.total, 1);
        bar.value = job.done;
        if (job.finished) { window.location.reload(); return; }
      }
    } catch (error) { /* try again */ }
    window.setTimeout(tick, 1000);
  };
  window.setTimeout(tick, 500);
})();
