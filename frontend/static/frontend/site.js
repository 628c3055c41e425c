// Small enhancements; every page works without them.
"use strict";

// Copy buttons: <button data-copy="#element-id"> copies that element's text.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const text = source.innerText.replace(/\n$/, "");
  let copied = false;
  try {
    await navigator.clipboard.writeText(text);
    copied = true;
  } catch (error) {
    // Clipboard API refused (no permission, not a secure context): select the text instead.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    copied = document.execCommand && document.execCommand("copy");
  }
  const label = button.textContent;
  button.textContent = copied ? "Copied" : "Press Ctrl+C";
  const status = button.closest("section, .secret")?.querySelector(".copy-status") || document.querySelector(".copy-status");
  if (status) status.textContent = copied ? "Copied to the clipboard." : "The text is selected; press Ctrl+C to copy it.";
  setTimeout(() => { button.textContent = label; }, 2000);
});

// Tabs (WAI-ARIA pattern): arrow keys move between tabs; without script both panels show.
for (const tablist of document.querySelectorAll("[data-tabs]")) {
  const tabs = [...tablist.querySelectorAll("[role=tab]")];
  const select = (tab, focus) => {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) tab.focus();
  };
  tablist.hidden = false;
  tablist.addEventListener("click", (event) => {
    const tab = event.target.closest("[role=tab]");
    if (tab) select(tab, false);
  });
  tablist.addEventListener("keydown", (event) => {
    const index = tabs.indexOf(document.activeElement);
    if (index < 0) return;
    const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -index, End: tabs.length - 1 - index };
    if (!(event.key in moves)) return;
    event.preventDefault();
    select(tabs[(index + moves[event.key] + tabs.length) % tabs.length], true);
  });
  const fromHash = tabs.find((tab) => "#" + tab.getAttribute("aria-controls") === location.hash);
  select(fromHash || tabs[0], false);
}

// Type-to-filter cards: <input data-filter-cards="#container"> hides cards whose data-search lacks the words.
for (const input of document.querySelectorAll("[data-filter-cards]")) {
  const container = document.querySelector(input.dataset.filterCards);
  const status = document.getElementById(input.getAttribute("aria-describedby"));
  input.addEventListener("input", () => {
    const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const card of container.querySelectorAll("[data-card]")) {
      const text = card.dataset.search.toLowerCase();
      const match = words.every((word) => text.includes(word));
      card.hidden = !match;
      if (match) shown += 1;
    }
    for (const group of container.querySelectorAll("[data-card-group]")) {
      group.hidden = !group.querySelector("[data-card]:not([hidden])");
    }
    if (status) status.textContent = words.length ? `${shown} matching card${shown === 1 ? "" : "s"}` : "";
  });
}

// Filter forms leave out empty fields, so a shared URL holds only the filters in use.
for (const form of document.querySelectorAll("form[data-clean-query]")) {
  form.addEventListener("submit", () => {
    for (const field of form.elements) {
      if (field.name && field.value === "") field.disabled = true;
    }
    // Re-enable after the navigation started, in case the page is restored from the back/forward cache.
    setTimeout(() => { for (const field of form.elements) field.disabled = false; }, 0);
  });
}

// On a phone the filter panel starts closed (unless filters are in use), so results come first.
if (window.matchMedia("(max-width: 800px)").matches) {
  for (const panel of document.querySelectorAll("[data-collapse-on-phone]:not([data-active])")) panel.open = false;
}
