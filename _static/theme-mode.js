// The theme reads the reader's colour mode from localStorage before this page's settings apply; on a first visit
// it finds "" and logs "Got invalid theme mode" as a console error. Start from "auto" (follow the system) instead.
if (!document.documentElement.dataset.mode) {
  document.documentElement.dataset.mode = "auto";
}
