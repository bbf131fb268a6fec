// The runs page: sort the table by a column (click its header again to reverse), and open the
// comparison of the ticked runs (the mlpkit report page, rendered by the server).
"use strict";

(function () {
  const table = document.getElementById("runs");
  if (!table) return;
  const body = table.tBodies[0];
  const compare = document.getElementById("compare");
  const headers = Array.from(table.tHead.rows[0].cells);

  headers.forEach((th, column) => {
    const kind = th.dataset.sort;
    if (!kind) return;
    th.tabIndex = 0;
    th.classList.add("sortable");
    const sort = () => {
      const descending = th.dataset.order !== "desc";
      headers.forEach((h) => delete h.dataset.order);
      th.dataset.order = descending ? "desc" : "asc";
      const rows = Array.from(body.rows);
      const key = (row) => row.cells[column].dataset.value || "";
      rows.sort((a, b) => {
        const x = key(a);
        const y = key(b);
        if (kind === "num") {
          if (x === "" || y === "") return (x === "") - (y === "");  // unknown values last
          return descending ? Number(y) - Number(x) : Number(x) - Number(y);
        }
        return descending ? y.localeCompare(x) : x.localeCompare(y);
      });
      body.append(...rows);
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") sort();
    });
  });

  function picked() {
    return Array.from(body.querySelectorAll("input.pick:checked")).map((box) => box.value);
  }
  body.addEventListener("change", () => {
    compare.disabled = picked().length === 0;
  });
  compare.addEventListener("click", () => {
    const query = picked().map((name) => "run=" + encodeURIComponent(name)).join("&");
    if (query) window.location.href = "/compare?" + query;
  });
})();
