/* The "Start class" page (dashboard/pages/classroom.py): a rectangle dragged over the preview of a screen chooses
   the part of it to watch. Drawn here while the pointer moves; on release its corners go to the page's
   "classroom-drag" store as fractions of the picture, which the server turns into the screen's pixels
   (dashboard.preview.part_from_drag), whatever size the browser shows the picture at. The picture is replaced
   every few seconds without disturbing a drag: the listeners sit on the document, not on the picture. */
(function () {
  let drag = null; // {picture, band, x0, y0} while a drag is under way

  function within(picture, event) {
    const box = picture.getBoundingClientRect();
    return {
      x: Math.min(Math.max(event.clientX - box.left, 0), box.width),
      y: Math.min(Math.max(event.clientY - box.top, 0), box.height),
      width: box.width,
      height: box.height,
    };
  }

  function place(band, x0, y0, x1, y1) {
    band.style.left = Math.min(x0, x1) + "px";
    band.style.top = Math.min(y0, y1) + "px";
    band.style.width = Math.abs(x1 - x0) + "px";
    band.style.height = Math.abs(y1 - y0) + "px";
  }

  document.addEventListener("pointerdown", function (event) {
    const picture = event.target;
    if (!(picture instanceof HTMLImageElement) || picture.id !== "classroom-preview") return;
    if (!picture.classList.contains("croppable") || picture.classList.contains("paused") || event.button !== 0) return;
    event.preventDefault(); // no dragging of the image itself, no text selection
    const start = within(picture, event);
    const band = document.createElement("div");
    band.className = "classroom-band";
    picture.parentElement.appendChild(band);
    place(band, start.x, start.y, start.x, start.y);
    drag = { picture: picture, band: band, x0: start.x, y0: start.y };
  });

  document.addEventListener("pointermove", function (event) {
    if (!drag) return;
    const now = within(drag.picture, event);
    place(drag.band, drag.x0, drag.y0, now.x, now.y);
  });

  document.addEventListener("pointerup", function (event) {
    if (!drag) return;
    const now = within(drag.picture, event);
    drag.band.remove();
    const corners = {
      x0: drag.x0 / now.width,
      y0: drag.y0 / now.height,
      x1: now.x / now.width,
      y1: now.y / now.height,
    };
    drag = null;
    window.dash_clientside.set_props("classroom-drag", { data: corners });
  });
})();
