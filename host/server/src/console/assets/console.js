// Warden console: the little the pages do without a reload. Served as a file of this
// origin (the Content-Security-Policy allows no inline script); every request it makes
// goes to this origin with the session cookie and, for a change, the CSRF token.
"use strict";

(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  // The approvals inbox: every two seconds, ask which holds are waiting; when that
  // changed, bring in the new list (unless the person is typing in it).
  let inbox = document.getElementById("inbox");
  const live = document.getElementById("inbox-live");
  if (inbox && live) {
    const poll = async () => {
      try {
        const answer = await fetch("/console/approvals/live", {
          credentials: "same-origin",
          headers: { accept: "application/json" },
        });
        if (answer.ok) {
          const ids = (await answer.json()).ids;
          const before = inbox.dataset.ids ? inbox.dataset.ids.split(" ") : [];
          if (ids.join(" ") !== before.join(" ")) {
            const busy = inbox.contains(document.activeElement);
            if (busy) {
              live.textContent = "The inbox changed: reload the page to see it.";
            } else {
              const page = await fetch("/console/approvals", { credentials: "same-origin" });
              const doc = new DOMParser().parseFromString(await page.text(), "text/html");
              const fresh = doc.getElementById("inbox");
              if (fresh) {
                const added = ids.filter((id) => !before.includes(id)).length;
                const node = document.importNode(fresh, true);
                inbox.replaceWith(node);
                inbox = node;
                live.textContent = added > 0
                  ? added + (added === 1 ? " new held call arrived." : " new held calls arrived.")
                  : "The inbox changed.";
              }
            }
          }
        }
      } catch (e) {
        // The server is away for a moment: try again at the next tick.
      }
      setTimeout(poll, 2000);
    };
    setTimeout(poll, 2000);
  }

  // The grant editor: check the grant as it is typed, and show what it changes.
  const form = document.querySelector("form.grant");
  if (form) {
    const area = form.querySelector("textarea");
    const status = document.getElementById("grant-status");
    const diff = document.getElementById("grant-diff");
    let timer = null;
    let asked = 0;
    const check = async () => {
      const mine = ++asked;
      try {
        const answer = await fetch(form.dataset.check, {
          method: "POST",
          credentials: "same-origin",
          headers: { "content-type": "text/plain", "x-csrf-token": csrf },
          body: area.value,
        });
        const body = await answer.json();
        if (mine !== asked) {
          return; // an older check: a newer one answers for the text now
        }
        if (body.ok) {
          status.textContent = body.changed
            ? "Valid. What it changes in the grant in force:"
            : "Valid, and the same as the grant in force.";
          status.className = "help good";
          diff.innerHTML = body.changed ? body.diff : "";
          area.removeAttribute("aria-invalid");
        } else {
          const error = typeof body.error === "string"
            ? body.error
            : (body.error && body.error.message) || "refused";
          status.textContent = "Not valid: " + error;
          status.className = "help bad";
          diff.innerHTML = "";
          area.setAttribute("aria-invalid", "true");
        }
      } catch (e) {
        status.textContent = "Could not check the grant: " + e;
      }
    };
    area.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(check, 300);
    });
  }
})();
