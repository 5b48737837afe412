/* Overrides by dragging on a schedule's timeline (docs/console.md).
 *
 * Dragging across a row selects a time range; clicking a shift block selects that shift.
 * Either way the selection only fills the "Add an override" form below the timeline (its
 * start and end, in the schedule's zone) and moves the focus to the person picker: the save
 * is the form's own, so the server checks and stores a dragged override exactly like a typed
 * one. Without this script, on a phone or by keyboard, the form is used directly.
 *
 * Hand-written, no build step, no dependencies. */
(function () {
  "use strict";

  var grid = document.getElementById("timeline");
  if (!grid || !window.Intl) return;
  var from = Number(grid.dataset.from);
  var to = Number(grid.dataset.to);
  var zone = grid.dataset.zone || "UTC";
  var now = Number(grid.dataset.now) || 0;
  if (!(to > from)) return;

  var format;
  try {
    format = new Intl.DateTimeFormat("en-CA", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23"
    });
  } catch (e) {
    // A zone this browser does not know: the server reads the form in UTC then, too.
    format = new Intl.DateTimeFormat("en-CA", {
      timeZone: "UTC", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23"
    });
  }

  function parts(secs) {
    var o = {};
    format.formatToParts(new Date(secs * 1000)).forEach(function (p) { o[p.type] = p.value; });
    return o;
  }

  /* `YYYY-MM-DDTHH:MM` in the schedule's zone: what the form's datetime-local inputs hold. */
  function localInput(secs) {
    var o = parts(secs);
    return o.year + "-" + o.month + "-" + o.day + "T" + o.hour + ":" + o.minute;
  }

  /* The nearest full local hour. Every zone offset is a multiple of 15 minutes, so a
     quarter-hour instant has a whole local minute to round away. */
  function snap(secs) {
    var t = Math.round(secs / 900) * 900;
    var m = Number(parts(t).minute);
    return m >= 30 ? t + (60 - m) * 60 : t - m * 60;
  }

  function at(track, clientX) {
    var r = track.getBoundingClientRect();
    var f = Math.min(1, Math.max(0, (clientX - r.left) / Math.max(1, r.width)));
    return from + f * (to - from);
  }

  function pct(secs) {
    return ((secs - from) / (to - from)) * 100;
  }

  function mark(track, a, b) {
    var sel = grid.querySelector(".tl-sel");
    if (!sel) {
      sel = document.createElement("li");
      sel.className = "tl-sel";
      sel.setAttribute("aria-hidden", "true");
    }
    if (sel.parentNode !== track) track.appendChild(sel);
    var lo = Math.max(from, Math.min(a, b));
    var hi = Math.min(to, Math.max(a, b));
    sel.style.left = pct(lo) + "%";
    sel.style.width = Math.max(0.2, pct(hi) - pct(lo)) + "%";
  }

  function fill(start, end) {
    var s = document.getElementById("ov_start");
    var e = document.getElementById("ov_end");
    var who = document.getElementById("ov_person");
    if (!s || !e || !who) return;
    s.value = localInput(start);
    e.value = localInput(end);
    [s, e].forEach(function (input) {
      input.dispatchEvent(new Event("input", { bubbles: true }));
      input.dispatchEvent(new Event("change", { bubbles: true }));
    });
    var status = document.getElementById("drag-status");
    if (status) {
      status.textContent = "Override from " + s.value.replace("T", " ") + " until " +
        e.value.replace("T", " ") + ": choose who is on call and add it.";
    }
    var form = document.getElementById("override-form");
    if (form) form.classList.add("prefilled");
    who.focus({ preventScroll: true });
    who.scrollIntoView({ block: "center" });
  }

  var drag = null;

  grid.addEventListener("pointerdown", function (ev) {
    var track = ev.target.closest(".tl-track");
    if (!track || !grid.contains(track) || track.closest(".tl-scale")) return;
    if (ev.pointerType === "mouse" && ev.button !== 0) return;
    ev.preventDefault();
    if (track.setPointerCapture) track.setPointerCapture(ev.pointerId);
    drag = {
      track: track,
      x0: ev.clientX,
      t0: at(track, ev.clientX),
      bar: ev.target.closest(".tl-bar"),
      moved: false
    };
  });

  grid.addEventListener("pointermove", function (ev) {
    if (!drag) return;
    if (Math.abs(ev.clientX - drag.x0) > 4) drag.moved = true;
    if (drag.moved) mark(drag.track, drag.t0, at(drag.track, ev.clientX));
  });

  function finish(ev) {
    if (!drag) return;
    var d = drag;
    drag = null;
    var start, end;
    if (d.moved) {
      var t1 = at(d.track, ev.clientX);
      start = snap(Math.min(d.t0, t1));
      end = snap(Math.max(d.t0, t1));
      if (end <= start) end = start + 3600;
    } else if (d.bar) {
      // A click on a shift block takes over that shift as the timeline shows it, from now
      // on when it has begun (the past is never changed).
      start = Math.max(Number(d.bar.dataset.start), now);
      end = Number(d.bar.dataset.end);
    } else {
      return;
    }
    mark(d.track, start, end);
    fill(start, end);
  }

  grid.addEventListener("pointerup", finish);
  grid.addEventListener("pointercancel", function () {
    drag = null;
    var sel = grid.querySelector(".tl-sel");
    if (sel) sel.remove();
  });
})();
