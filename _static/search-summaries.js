// Search results: summaries from the prose only. Sphinx builds each summary from the page's text; without this,
// it quotes code cells (`Code(inspect.getsource(...))`), LaTeX source and the sliders' data.
document.addEventListener("DOMContentLoaded", () => {
  if (typeof Search === "undefined" || !Search.htmlToText) return;
  const prose = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => {
    const page = new DOMParser().parseFromString(htmlString, "text/html");
    page.querySelectorAll(".cell_input, .cell_output, div.math, .admonition.solution, script")
      .forEach((el) => el.remove());
    page.querySelectorAll("span.math").forEach((el) => { el.textContent = "…"; });
    return prose(page.documentElement.outerHTML, anchor);
  };
});
