// Draws the dashboard's charts from the figures the page's tables print (#dashboard-data).
// Chart.js is vendored in static/vendor/chartjs (no CDN). Animation is off: the charts are
// read, not watched, and a screenshot taken right after load must show them whole.
(function () {
  "use strict";

  var STATUS_COLORS = {
    pending: "#9aa5b1",
    processing: "#f0b429",
    in_review: "#e67e22",
    requires_capture: "#8e44ad",
    succeeded: "#27ae60",
    failed: "#c0392b",
    canceled: "#7f8c8d",
    refunded: "#2980b9",
    reconcile: "#d35400",
    in_transit: "#3498db",
    paid: "#27ae60"
  };

  function stackedBars(canvas, days, statuses, series, formatValue) {
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: days.map(function (day) { return day.slice(5); }),
        datasets: statuses.map(function (status) {
          return { label: status, data: series[status], backgroundColor: STATUS_COLORS[status] || "#555" };
        })
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { stacked: true },
          y: { stacked: true, beginAtZero: true, ticks: formatValue ? { callback: formatValue } : { precision: 0 } }
        },
        plugins: { legend: { position: "bottom" } }
      }
    });
  }

  function nothingToDraw(canvasId, text) {
    var note = document.createElement("p");
    note.className = "nothing-to-draw";
    note.textContent = text;
    document.getElementById(canvasId).replaceWith(note);
  }

  function draw() {
    var data = JSON.parse(document.getElementById("dashboard-data").textContent);
    var scale = Math.pow(10, data.exponent);
    var majorUnits = function (minor) { return minor / scale; };
    var volumes = {};
    data.statuses.forEach(function (status) { volumes[status] = data.volumes[status].map(majorUnits); });

    stackedBars(document.getElementById("chart-counts"), data.days, data.statuses, data.counts);
    stackedBars(document.getElementById("chart-volumes"), data.days, data.statuses, volumes, function (value) {
      return value.toLocaleString() + (data.currency ? " " + data.currency : "");
    });
    if (data.decisions.approved + data.decisions.denied === 0) {
      nothingToDraw("chart-decisions", "No review decided in these days.");
    } else new window.Chart(document.getElementById("chart-decisions"), {
      type: "doughnut",
      data: {
        labels: ["approved", "denied"],
        datasets: [{
          data: [data.decisions.approved, data.decisions.denied],
          backgroundColor: [STATUS_COLORS.succeeded, STATUS_COLORS.failed]
        }]
      },
      options: { animation: false, maintainAspectRatio: false, plugins: { legend: { position: "bottom" } } }
    });
    if (data.failures.codes.length === 0) {
      nothingToDraw("chart-failures", "No failed payments in these days.");
    } else new window.Chart(document.getElementById("chart-failures"), {
      type: "bar",
      data: {
        labels: data.failures.codes,
        datasets: [{
          label: "failed payments",
          data: data.failures.counts,
          backgroundColor: STATUS_COLORS.failed,
          maxBarThickness: 28
        }]
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        indexAxis: "y",
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { display: false } }
      }
    });
    var payoutStatuses = Object.keys(data.payouts);
    var payoutCounts = payoutStatuses.map(function (status) { return data.payouts[status]; });
    if (payoutCounts.reduce(function (a, b) { return a + b; }, 0) === 0) {
      nothingToDraw("chart-payouts", "No payout in these days.");
    } else new window.Chart(document.getElementById("chart-payouts"), {
      type: "doughnut",
      data: {
        labels: payoutStatuses,
        datasets: [{
          data: payoutCounts,
          backgroundColor: payoutStatuses.map(function (status) { return STATUS_COLORS[status] || "#555"; })
        }]
      },
      options: { animation: false, maintainAspectRatio: false, plugins: { legend: { position: "bottom" } } }
    });
    var hooks = data.webhooks;
    if (hooks.succeeded + hooks.failed + hooks.pending === 0) {
      nothingToDraw("chart-webhooks", "No webhook delivery in these days.");
    } else new window.Chart(document.getElementById("chart-webhooks"), {
      type: "doughnut",
      data: {
        labels: ["delivered", "failed", "pending"],
        datasets: [{
          data: [hooks.succeeded, hooks.failed, hooks.pending],
          backgroundColor: [STATUS_COLORS.succeeded, STATUS_COLORS.failed, STATUS_COLORS.processing]
        }]
      },
      options: { animation: false, maintainAspectRatio: false, plugins: { legend: { position: "bottom" } } }
    });
    document.body.dataset.chartsReady = "true";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
