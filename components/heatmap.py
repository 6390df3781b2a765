"""The clickable salience heatmap: a Streamlit custom component (v2, no iframe, no build step).

All user text is inserted with ``textContent``: a prompt containing HTML or script
shows as characters and never runs.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from salience.report.palette import legend_gradient, paint
from salience.report.views import legend_words

_CSS = """
.hm-root { font-family: var(--st-font, sans-serif); }
.hm-legend { display: flex; align-items: flex-start; gap: .35rem 1rem; font-size: .85rem; margin-bottom: .5rem;
  flex-wrap: wrap; color: var(--st-text-color, #222); }
.hm-scale { display: grid; grid-template-columns: 1fr 1fr; column-gap: .75rem; width: min(100%, 34rem); }
.hm-bar { grid-column: 1 / 3; height: 12px; border-radius: 6px; border: 1px solid #999; }
.hm-end { opacity: .9; line-height: 1.3; margin-top: .15rem; }
.hm-end.high { text-align: right; }
.hm-details { opacity: .75; font-size: .8rem; }
.hm-details summary { cursor: pointer; }
.hm-status { font-size: .9rem; margin: .25rem 0 .5rem 0; min-height: 1.2rem; }
.hm-text { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .92rem;
  line-height: 1.75; white-space: pre-wrap; word-break: break-word; padding: .75rem;
  border: 1px solid rgba(128,128,128,.35); border-radius: .5rem;
  color: #111; background: #fff; }
.hm-seg { border-radius: 3px; padding: 1px 0; }
.hm-seg.out { cursor: pointer; border-bottom: 2px dotted #6b7280; }
.hm-seg.out:hover { outline: 1px solid #555; }
.hm-seg.out:focus-visible { outline: 2px solid #2563eb; }
.hm-seg.sel { outline: 2px solid #111; background: #fde68a !important; border-bottom-color: #111; }
.hm-bos { font-size: .7rem; color: #555; border: 1px dashed #999; border-radius: 3px; padding: 0 3px;
  margin-right: 2px; }
.hm-stale .hm-seg { filter: grayscale(1) opacity(.6); }
.hm-large .hm-text { font-size: 1.45rem; line-height: 1.8; }
.hm-large .hm-status, .hm-large .hm-legend { font-size: 1.15rem; }
"""

_JS = r"""
export default function(component) {
  const { data, parentElement, setTriggerValue } = component;
  let root = parentElement.querySelector(".hm-root");
  if (!root) {
    root = document.createElement("div");
    root.className = "hm-root";
    parentElement.appendChild(root);
  }
  root.replaceChildren();
  root.className = "hm-root" + (data.large ? " hm-large" : "");
  const cells = data.cells || [];

  const legend = document.createElement("div");
  legend.className = "hm-legend";
  legend.setAttribute("data-testid", "heatmap-legend");
  const scale = document.createElement("div");
  scale.className = "hm-scale";
  const bar = document.createElement("span");
  bar.className = "hm-bar";
  bar.style.background = data.gradient;  // colours come computed from salience.report.palette
  const low = document.createElement("span");
  low.className = "hm-end low";
  low.textContent = `← ${data.legend_low}`;
  const high = document.createElement("span");
  high.className = "hm-end high";
  high.textContent = `${data.legend_high} →`;
  scale.append(bar, low, high);
  legend.append(scale);
  if (data.legend_note) {
    const details = document.createElement("details");
    details.className = "hm-details";
    const summary = document.createElement("summary");
    summary.textContent = "Details for engineers";
    const note = document.createElement("span");
    note.textContent = " " + data.legend_note;
    details.append(summary, note);
    legend.append(details);
  }
  if (data.show_legend !== false) root.appendChild(legend);

  const status = document.createElement("div");
  status.className = "hm-status";
  status.setAttribute("data-testid", "heatmap-status");
  status.setAttribute("aria-live", "polite");
  status.textContent = data.status || "";
  root.appendChild(status);

  const box = document.createElement("div");
  box.className = "hm-text" + (data.stale ? " hm-stale" : "");
  box.setAttribute("data-testid", "heatmap-text");
  box.setAttribute("role", "document");
  const anchor = data.selection ? data.selection[0] : null;

  // Enter on a segment reruns the page, which redraws this box: remember where the keyboard was.
  window.__heatmapFocus = window.__heatmapFocus || {};
  const focusKey = data.focus_key || "heatmap";

  function choose(cell, extend, keyboard) {
    window.__heatmapFocus[focusKey] = keyboard ? { start: cell.start, at: Date.now() } : null;
    let start = cell.start, end = cell.end;
    if (extend && data.selection) {
      start = Math.min(start, data.selection[0]);
      end = Math.max(end, data.selection[1]);
    }
    setTriggerValue("select", { start: start, end: end });
  }

  for (const cell of cells) {
    if (cell.text === "" && !cell.output) {
      if (cell.id === 0 && data.show_bos) {
        const bos = document.createElement("span");
        bos.className = "hm-bos";
        bos.textContent = "start";
        bos.title = `start-of-text token · score ${cell.score.toPrecision(3)}`;
        bos.style.background = cell.background;
        box.appendChild(bos);
      }
      continue;
    }
    const span = document.createElement("span");
    span.className = "hm-seg" + (cell.output ? " out" : "") + (cell.selected ? " sel" : "");
    span.textContent = cell.text;
    span.dataset.start = cell.start;
    span.dataset.end = cell.end;
    span.dataset.value = cell.value;
    if (cell.background) {
      span.style.background = cell.background;
      span.style.color = cell.color;
    }
    if (!cell.output) {
      if (data.has_scores) {
        span.title = `score ${cell.score.toPrecision(3)} · ${Math.round(Math.abs(cell.value) * 100)}% of the strongest`;
      }
    } else {
      span.tabIndex = 0;
      span.setAttribute("role", "button");
      span.setAttribute("aria-pressed", cell.selected ? "true" : "false");
      span.title = data.click_hint || "Click to explain this part of the output; shift-click to extend";
      span.addEventListener("click", (event) => { event.stopPropagation(); choose(cell, event.shiftKey); });
      span.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          choose(cell, event.shiftKey, true);
        }
      });
    }
    box.appendChild(span);
  }
  box.addEventListener("click", () => { if (anchor !== null) setTriggerValue("select", { clear: true }); });
  root.appendChild(box);

  const wanted = window.__heatmapFocus[focusKey];
  const active = document.activeElement;
  const host = root.getRootNode().host;  // the component lives in a shadow root
  const lost = !active || active === document.body || active === host || root.contains(active);
  if (wanted && Date.now() - wanted.at < 120000 && lost) {
    const target = Array.from(box.querySelectorAll(".hm-seg.out")).find(
      (el) => Number(el.dataset.start) <= wanted.start && wanted.start < Number(el.dataset.end)
    ) || box.querySelector(".hm-seg.out.sel");
    if (target) target.focus({ preventScroll: true });
  }
}
"""

_heatmap = st.components.v2.component("salience_heatmap", css=_CSS, js=_JS, isolate_styles=True)


def heatmap(
    cells: list[dict],
    *,
    method: str,
    signed: bool,
    scale: float,
    intensity: float,
    selection: tuple[int, int] | None,
    status: str,
    stale: bool,
    key: str,
    on_select: Callable[[], None],
    on_select_args: tuple = (),
    show_legend: bool = True,
    large: bool = False,
    click_hint: str | None = None,
    shared_scale: bool = False,
) -> object:
    """Draw prompt+output; clicking an output segment sets the trigger value ``select``.

    The legend shows ``method``'s own words at the ends they describe; the raw scale sits
    in a collapsed "Details for engineers". After Enter on a segment, focus returns to it when the
    rerun redraws the box.
    """
    low, high, note, _ = legend_words(method, scale, shared=shared_scale)
    return _heatmap(
        key=key,
        data={
            "cells": paint(cells, signed, intensity),
            "gradient": legend_gradient(signed),
            "selection": list(selection) if selection else None,
            "status": status,
            "stale": stale,
            "has_scores": scale > 0,
            "show_bos": scale > 0,
            "legend_low": low,
            "legend_high": high,
            "legend_note": note,
            "show_legend": show_legend,
            "large": large,
            "click_hint": click_hint,
            "focus_key": key,
        },
        on_select_change=(lambda: on_select(*on_select_args)) if on_select_args else on_select,
    )
