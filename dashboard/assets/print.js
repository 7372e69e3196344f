/* Fits the report's charts to an A4 page while it prints, then gives them their screen width back.
   Plotly draws a chart at a fixed pixel size when it is shown, so print styles alone would cut off a chart
   drawn on a wide screen. Both the report's Print button and the browser's own Print pass through here. */
(function () {
  // style.css's @page: 210 mm less two 12 mm margins, in CSS pixels (96 per inch).
  const PRINT_WIDTH_PX = Math.floor(((210 - 2 * 12) / 25.4) * 96);

  function charts() {
    // Only charts marked to fit (dashboard.layout.PRINT_FIT): a live page's small card charts keep their size.
    return window.Plotly ? Array.from(document.querySelectorAll(".print-fit .js-plotly-plot")) : [];
  }

  window.addEventListener("beforeprint", function () {
    charts().forEach(function (chart) {
      window.Plotly.relayout(chart, { width: PRINT_WIDTH_PX });
    });
  });

  window.addEventListener("afterprint", function () {
    charts().forEach(function (chart) {
      window.Plotly.relayout(chart, { width: null, autosize: true });
    });
  });
})();
