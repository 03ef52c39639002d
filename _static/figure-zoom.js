// A figure shown narrower than it was drawn (a phone, a narrow window, a wide figure in the column) opens at its
// drawn size on a tap, in a full-screen box that scrolls; Escape, the close button or a second tap closes it.
// (Without this script a tap on a figure left the page for its bare PNG file, with no way back but the browser's.)
// The drawn size is the width the page gives the picture (its inline width, else its width attribute); the
// picture is stored at twice that, so the enlarged view is sharp.
(() => {
  const SHRUNK = 0.95; // shown at less than this share of the drawn width: worth enlarging
  const selector = "article figure img, article .cell_output img";

  const drawnWidth = (img) =>
    parseFloat(img.style.width) || parseFloat(img.getAttribute("width")) || img.naturalWidth / 2;

  let dialog = null;
  const open = (img) => {
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.className = "optimlab-zoom";
      dialog.setAttribute("aria-label", "Figure at full size");
      dialog.innerHTML = '<button type="button" class="optimlab-zoom-close" aria-label="Close">×</button>';
      dialog.addEventListener("click", () => dialog.close());
      document.body.appendChild(dialog);
    }
    dialog.querySelector("img")?.remove();
    const big = document.createElement("img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt;
    big.style.width = `${drawnWidth(img)}px`;
    dialog.appendChild(big);
    dialog.showModal();
    dialog.querySelector("button").focus();
  };

  // Marked while shown narrower than drawn; looked at again whenever its box changes size (the page loading, the
  // window resized, a collapsed solution opened: a hidden figure has no size and is not marked).
  const mark = (img) => {
    const width = img.getBoundingClientRect().width;
    const shrunk = width > 0 && width < SHRUNK * drawnWidth(img);
    img.classList.toggle("optimlab-zoomable", shrunk);
    if (shrunk) {
      img.tabIndex = 0;
      img.setAttribute("role", "button");
      img.title = "Open at full size";
    } else if (img.getAttribute("role") === "button") {
      img.removeAttribute("tabindex");
      img.removeAttribute("role");
      img.removeAttribute("title");
    }
  };
  const watch = () => {
    const observer = new ResizeObserver((entries) => entries.forEach((entry) => mark(entry.target)));
    for (const img of document.querySelectorAll(selector)) {
      if (!img.closest(".optimlab-widget, .jupyter-widgets")) observer.observe(img);
    }
  };

  document.addEventListener("click", (event) => {
    const img = event.target.closest?.("img.optimlab-zoomable");
    if (img) {
      event.preventDefault(); // Sphinx wraps a figure in a link to its file: stay on the page
      open(img);
    }
  });
  document.addEventListener("keydown", (event) => {
    const img = event.target.closest?.("img.optimlab-zoomable");
    if (img && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      open(img);
    }
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watch);
  else watch();
})();
