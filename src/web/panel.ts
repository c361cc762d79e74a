/** The stats panels of pushcast's pages: a definition list of figures and a table of recent events. */

/** Fills a `<dl>` with one term/description pair per row. */
export function renderFigures(list: HTMLElement, rows: readonly (readonly [string, string])[]): void {
  list.replaceChildren(
    ...rows.flatMap(([term, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = value;
      return [dt, dd];
    }),
  );
}

/** Fills a `<tbody>` with one row of text cells per entry. */
export function renderTable(body: HTMLTableSectionElement, rows: readonly (readonly string[])[]): void {
  body.replaceChildren(
    ...rows.map((cells) => {
      const tr = document.createElement('tr');
      for (const cell of cells) {
        const td = document.createElement('td');
        td.textContent = cell;
        tr.append(td);
      }
      return tr;
    }),
  );
}
