/* Model Arena pages: live leaderboard, keyboard tabs, upload with progress, live submission status.
   No framework; the server renders every piece of HTML, this script only fetches fresh fragments. */
(function () {
  "use strict";
  var BUSY_EVERY_MS = 2500;
  var IDLE_EVERY_MS = 30000;

  /* The one time format of every page, in the viewer's time zone: "2 Dec 2026, 08:04 CET"
     (the server writes the same format in UTC, for pages read without this script). */
  function formatWhen(date) {
    var parts = {};
    new Intl.DateTimeFormat("en-GB", {day: "numeric", month: "short", year: "numeric",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short"})
      .formatToParts(date).forEach(function (part) { parts[part.type] = part.value; });
    return parts.day + " " + parts.month + " " + parts.year + ", " + parts.hour + ":" +
      parts.minute + " " + parts.timeZoneName;
  }
  /* A chart's time tick, "2 Dec 02:00" in the viewer's zone (the server's ticks are UTC). */
  function formatTick(date, withTime) {
    var parts = {};
    new Intl.DateTimeFormat("en-GB", {day: "numeric", month: "short", hour: "2-digit",
      minute: "2-digit", hourCycle: "h23", timeZoneName: "short"})
      .formatToParts(date).forEach(function (part) { parts[part.type] = part.value; });
    return {text: parts.day + " " + parts.month + (withTime ? " " + parts.hour + ":" +
      parts.minute : ""), zone: parts.timeZoneName};
  }
  function localizeTimes(root) {
    root.querySelectorAll("svg").forEach(function (svg) {
      var zone = "";
      svg.querySelectorAll("text[data-tick-when]").forEach(function (node) {
        var date = new Date(node.dataset.tickWhen);
        if (isNaN(date)) return;
        var tick = formatTick(date, /:/.test(node.textContent));
        node.textContent = tick.text;
        zone = tick.zone;
      });
      var axis = svg.querySelector("[data-time-axis]");
      if (axis && zone) axis.textContent = "time (" + zone + ") →";
    });
    root.querySelectorAll("time[data-when]").forEach(function (node) {
      var date = new Date(node.getAttribute("datetime"));
      if (!isNaN(date)) {
        node.textContent = formatWhen(date);
        node.title = "your time zone: " + Intl.DateTimeFormat().resolvedOptions().timeZone;
      }
    });
  }
  /* The same words as the server's time_left filter. */
  function timeLeft(ms) {
    var seconds = Math.max(0, Math.floor(ms / 1000));
    var days = Math.floor(seconds / 86400), hours = Math.floor(seconds % 86400 / 3600);
    var minutes = Math.floor(seconds % 3600 / 60), rest = seconds % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    if (days) return days + " day" + (days !== 1 ? "s" : "") + " " + hours + " h";
    if (hours) return hours + " h " + two(minutes) + " min";
    return minutes + " min " + two(rest) + " s";
  }
  function startCountdowns() {
    var nodes = document.querySelectorAll("[data-countdown]");
    if (!nodes.length) return;
    function tick() {
      nodes.forEach(function (node) {
        var left = new Date(node.dataset.countdown) - Date.now();
        node.textContent = timeLeft(left);
        if (left <= 0 && !node.dataset.reloaded) {
          node.dataset.reloaded = "1";  // opened or closed: the page changes (form, results)
          setTimeout(function () { location.reload(); }, 1500);
        }
      });
    }
    tick();
    setInterval(tick, 1000);
  }

  /* Run load() again and again, pausing while the tab is hidden; returns {now: refresh at once}. */
  function poller(load, interval) {
    var timer = null;
    function schedule() {
      clearTimeout(timer);
      if (!document.hidden) timer = setTimeout(tick, interval());
    }
    function tick() {
      clearTimeout(timer);
      load().then(schedule, schedule);
    }
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) clearTimeout(timer); else tick();
    });
    schedule();
    return {now: tick};
  }

  /* A container whose HTML is replaced by the fragment at url(), newest request wins. */
  function liveFragment(container, url) {
    var last = container.innerHTML, latest = 0;
    return function () {
      var mine = ++latest;
      return fetch(url(), {credentials: "same-origin"}).then(function (response) {
        // A redirect means the session ended (the login page): keep what is shown.
        if (!response.ok || response.redirected) throw new Error("HTTP " + response.status);
        return response.text();
      }).then(function (html) {
        if (mine !== latest || html === last) return;
        container.innerHTML = html;
        last = html;
        localizeTimes(container);
      });
    };
  }

  function setupLeaderboard(section) {
    var state = {track: section.dataset.track, category: section.dataset.category,
                 split: section.dataset.split, page: section.dataset.page};
    var panel = section.querySelector('[role="tabpanel"]');
    var status = section.querySelector("[data-refresh-status]");
    var query = function () { return new URLSearchParams(state).toString(); };
    var load = liveFragment(panel, function () { return section.dataset.panelUrl + "?" + query(); });
    var poll = poller(function () {
      return load().then(function () {
        status.textContent = "Updated " + formatWhen(new Date()) + "; updates itself.";
      }, function () {
        status.textContent = "Could not refresh the leaderboard; trying again shortly.";
      });
    }, function () { return Number(section.dataset.refreshSeconds) * 1000; });

    function syncLinks() {
      section.querySelectorAll('[role="tab"]').forEach(function (tab) {
        var wanted = Object.assign({}, state, {page: "1"});
        wanted[tab.parentNode.dataset.param] = tab.dataset.value;
        tab.href = "?" + new URLSearchParams(wanted).toString();
      });
    }
    section.querySelectorAll('[role="tablist"]').forEach(function (list) {
      var tabs = Array.prototype.slice.call(list.querySelectorAll('[role="tab"]'));
      function activate(tab) {
        tabs.forEach(function (other) {
          other.setAttribute("aria-selected", String(other === tab));
          other.tabIndex = other === tab ? 0 : -1;
        });
        tab.focus();
        state[list.dataset.param] = tab.dataset.value;
        state.page = "1";
        if (list.dataset.param === "category") panel.setAttribute("aria-labelledby", tab.id);
        history.replaceState(null, "", "?" + query());
        syncLinks();
        poll.now();
      }
      list.addEventListener("click", function (event) {
        var tab = event.target.closest('[role="tab"]');
        if (!tab || event.ctrlKey || event.metaKey || event.shiftKey) return;
        event.preventDefault();
        activate(tab);
      });
      list.addEventListener("keydown", function (event) {
        var at = tabs.indexOf(document.activeElement);
        if (at < 0) return;
        var to = {ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1,
                  Home: 0, End: tabs.length - 1, " ": at}[event.key];
        if (to === undefined) return;
        event.preventDefault();
        activate(tabs[(to + tabs.length) % tabs.length]);
      });
    });
  }

  function setupSubmissions(container) {
    var load = liveFragment(container, function () { return container.dataset.panelUrl; });
    var busy = function () {
      var inner = container.querySelector("[data-in-progress]");
      return inner && inner.dataset.inProgress === "true";
    };
    return poller(function () { return load().catch(function () {}); },
                  function () { return busy() ? BUSY_EVERY_MS : IDLE_EVERY_MS; });
  }

  function describeSize(bytes) {
    return bytes < 1e6 ? (bytes / 1e3).toFixed(1) + " kB" : (bytes / 1e6).toFixed(2) + " MB";
  }

  function setupUpload(form, submissions) {
    var input = form.querySelector('input[type="file"]');
    var zone = form.querySelector("[data-dropzone]");
    var chosen = form.querySelector("[data-chosen]");
    var progress = form.querySelector("[data-progress]");
    var bar = progress.querySelector("progress");
    var percent = progress.querySelector("[data-progress-text]");
    var status = form.querySelector("[data-upload-status]");
    var button = form.querySelector('button[type="submit"]');

    function showChosen() {
      var file = input.files[0];
      chosen.textContent = file ? "Chosen: " + file.name + " (" + describeSize(file.size) + ")" : "";
    }
    function say(message, isError) {
      status.textContent = message;
      status.className = "upload-status message " + (isError ? "error" : "success");
    }
    function setProgress(value) {
      bar.value = value;
      percent.textContent = value + "%";
    }
    input.addEventListener("change", showChosen);
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("dragover");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.remove("dragover");
      });
    });
    zone.addEventListener("drop", function (event) {
      if (!event.dataTransfer.files.length) return;
      input.files = event.dataTransfer.files;
      showChosen();
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!input.files.length) {
        say("Choose an .onnx file first (or drop it on the box).", true);
        input.focus();
        return;
      }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) setProgress(Math.round(e.loaded / e.total * 100));
      });
      xhr.addEventListener("load", function () {
        var body;
        try {
          body = JSON.parse(xhr.responseText);
        } catch (err) {
          body = {ok: false, message: /\/login\//.test(xhr.responseURL) ?
            "Your session has ended: log in again, then upload." :
            "The server answered with an error (" + xhr.status + "). Please try again."};
        }
        button.disabled = false;
        say(body.message, !body.ok || body.status === "rejected" || body.status === "failed");
        if (body.ok) {
          setProgress(100);
          input.value = "";
          showChosen();
        }
        if (submissions) submissions.now();
      });
      xhr.addEventListener("error", function () {
        button.disabled = false;
        say("The upload did not reach the server. Check your connection and try again.", true);
      });
      button.disabled = true;
      progress.hidden = false;
      setProgress(0);
      say("Uploading " + input.files[0].name + "…", false);
      xhr.send(new FormData(form));
    });
  }

  /* "Check it locally first" names the task of the track chosen in the upload form. */
  function setupLocalCheck(select) {
    function show() {
      document.querySelectorAll("[data-local-check]").forEach(function (block) {
        block.hidden = block.dataset.localCheck !== select.value;
      });
    }
    select.addEventListener("change", show);
    show();
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
    startCountdowns();
    var trackSelect = document.querySelector("form[data-upload] select[name=track]");
    if (trackSelect) setupLocalCheck(trackSelect);
    document.querySelectorAll("[data-leaderboard]").forEach(setupLeaderboard);
    var list = document.querySelector("[data-submissions]");
    var submissions = list ? setupSubmissions(list) : null;
    document.querySelectorAll("form[data-upload]").forEach(function (form) {
      setupUpload(form, submissions);
    });
  });
}());
