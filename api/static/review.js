// The annotator page: keyboard-first review of one leased card at a time.
// 1–5 pick a candidate, Enter confirms, / searches the catalog, R rejects, S skips.
"use strict";

const TOKEN_KEY = "cardscan.token";
const DONE_KEY = "cardscan.review.done";
const $ = (id) => document.getElementById(id);

// Why the scanner held a card back (the matcher's gates, models/matcher.py), said for a person.
const GATE_TEXT = {
  number_unread: "collector number not read: check it on the card",
  number_mismatch: "the number read belongs to another printing",
  sibling_printing: "another printing of this card looks the same: check set and number",
  printing_unprovable: "Alpha and Beta print the same: only the corners tell them apart",
  looks_different: "the art matches but the frame or text box does not: maybe a reprint",
  frame_mismatch: "the border is unlike this printing's: maybe a reprint",
  title_mismatch: "the title reads as another card",
  weak_geometry: "the picture barely matches any catalog card",
  misaligned: "the crop may show a card lying under this one, not this one",
  uncalibrated: "the scanner's confidence is not calibrated",
};

const state = { card: null, chosen: null, results: [], active: -1, busy: false, poll: null };

function token() { return localStorage.getItem(TOKEN_KEY); }

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${token()}`, ...(options.headers || {}) };
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(options.json);
  }
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401 || response.status === 403) {
    showLogin(response.status === 403 ? "This token has no annotator role." : "Token not accepted.");
    throw new Error("unauthorized");
  }
  if (!response.ok && response.status !== 204) {
    const body = await response.json().catch(() => ({}));
    const error = new Error(body.detail || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response;
}

function show(section) {
  for (const id of ["login", "empty", "workspace"]) $(id).hidden = id !== section;
  $("sign-out").hidden = section === "login";
}

function showLogin(message = "") {
  clearInterval(state.poll);
  $("login-error").textContent = message;
  show("login");
  $("token-input").focus();
}

function setStatus(text) { $("status").textContent = text; }

function bumpDone() {
  const done = Number(sessionStorage.getItem(DONE_KEY) || 0) + 1;
  sessionStorage.setItem(DONE_KEY, String(done));
  $("done-count").textContent = String(done);
}

function describe(card) {
  return `${card.name} · ${card.set_code} #${card.number ?? "?"}`;
}

function choose(card, from) {
  state.chosen = card;
  $("chosen").textContent = describe(card) + (from === "search" ? " (correction)" : "");
  document.querySelectorAll(".candidate").forEach((el) => {
    el.classList.toggle("selected", from === "candidate" && el.dataset.key === card.card_key);
  });
  document.querySelectorAll(".result").forEach((el) => {
    el.classList.toggle("selected", from === "search" && el.dataset.key === card.card_key);
  });
}

function cardTile(card, i) {
  const li = document.createElement("li");
  li.className = "candidate";
  li.dataset.key = card.card_key;
  li.innerHTML = `<span class="key">${i + 1}</span><img alt=""><div class="name"></div>
    <div class="meta"></div>`;
  if (card.image_url) li.querySelector("img").src = card.image_url;
  li.querySelector(".name").textContent = card.name;
  const score = card.score == null ? "" : ` · ${(card.score * 100).toFixed(0)}%`;
  li.querySelector(".meta").textContent =
    `${card.set_code} · ${card.set_name} · #${card.number ?? "?"}${score}`;
  li.addEventListener("click", () => choose(card, "candidate"));
  return li;
}

async function render(card) {
  state.card = card;
  state.results = [];
  state.active = -1;
  $("results").replaceChildren();
  $("search").value = "";
  $("quantity").value = "1";
  $("queue-count").textContent = String(card.queue_remaining);
  $("confidence").textContent =
    card.confidence == null ? "–" : `${(card.confidence * 100).toFixed(0)}%`;
  $("gates").replaceChildren(...(card.gates || []).map((gate) => {
    const li = document.createElement("li");
    li.textContent = GATE_TEXT[gate] ?? gate;
    return li;
  }));
  const candidates = card.candidates.slice(0, 5);
  $("candidates").replaceChildren(...candidates.map(cardTile));
  if (candidates.length) choose(candidates[0], "candidate");
  else { state.chosen = null; $("chosen").textContent = "– (search for the card)"; }
  show("workspace");
  const old = $("crop").src;
  $("crop").removeAttribute("src");
  if (old.startsWith("blob:")) URL.revokeObjectURL(old);
  if (card.crop_url) {
    // The crop is private: fetch it with the token and show it as a blob.
    const blob = await (await api(card.crop_url)).blob();
    if (state.card === card) $("crop").src = URL.createObjectURL(blob);
  }
}

async function loadNext() {
  clearInterval(state.poll);
  const response = await api("/v1/review/next");
  if (response.status === 204) {
    state.card = null;
    $("queue-count").textContent = "0";
    show("empty");
    state.poll = setInterval(() => loadNext().catch(() => {}), 4000);
    return;
  }
  await render(await response.json());
}

async function act(label, fn) {
  if (state.busy || !state.card) return;
  state.busy = true;
  try {
    await fn(state.card);
    setStatus(label);
    await loadNext();
  } catch (err) {
    if (err.message === "unauthorized") return;
    setStatus(`Failed: ${err.message}`);
    // Decided or taken by someone else meanwhile (an expired lease): move on to the next card.
    if (err.status === 404 || err.status === 409) await loadNext().catch(() => {});
  } finally {
    state.busy = false;
  }
}

function confirmCard() {
  if (!state.chosen) { setStatus("Pick a candidate or search for the card first."); return; }
  const chosen = state.chosen;
  return act(`Saved ${describe(chosen)}`, async (card) => {
    await api(`/v1/scan-cards/${card.id}/confirm`, {
      method: "POST",
      json: { card_key: chosen.card_key, condition: $("condition").value,
              quantity: Number($("quantity").value) || 1 },
    });
    bumpDone();
  });
}

function rejectCard() {
  return act("Rejected", async (card) => {
    await api(`/v1/scan-cards/${card.id}/reject`, { method: "POST", json: { reason: "not_a_card" } });
    bumpDone();
  });
}

function skipCard() {
  return act("Skipped", (card) => api(`/v1/scan-cards/${card.id}/skip`, { method: "POST" }));
}

let searchTimer = null;
function onSearchInput() {
  clearTimeout(searchTimer);
  const q = $("search").value.trim();
  if (!q) { $("results").replaceChildren(); state.results = []; return; }
  searchTimer = setTimeout(async () => {
    const response = await api(`/v1/cards?limit=8&q=${encodeURIComponent(q)}`);
    const { items } = await response.json();
    if ($("search").value.trim() !== q) return;  // typed on meanwhile
    state.results = items;
    state.active = items.length ? 0 : -1;
    $("results").replaceChildren(...items.map((card, i) => {
      const li = document.createElement("li");
      li.className = "result" + (i === 0 ? " active" : "");
      li.dataset.key = card.card_key;
      li.innerHTML = `<img alt=""><div><div class="name"></div><div class="meta"></div></div>`;
      if (card.image_url) li.querySelector("img").src = card.image_url;
      li.querySelector(".name").textContent = card.name;
      li.querySelector(".meta").textContent = `${card.set_code} · ${card.set_name} · #${card.number ?? "?"}`;
      li.addEventListener("click", () => choose(card, "search"));
      return li;
    }));
  }, 120);
}

function moveActive(step) {
  if (!state.results.length) return;
  state.active = (state.active + step + state.results.length) % state.results.length;
  document.querySelectorAll(".result").forEach((el, i) => el.classList.toggle("active", i === state.active));
}

function onSearchKey(event) {
  if (event.key === "ArrowDown") { moveActive(1); event.preventDefault(); }
  else if (event.key === "ArrowUp") { moveActive(-1); event.preventDefault(); }
  else if (event.key === "Escape") { $("search").blur(); }
  else if (event.key === "Enter") {
    event.preventDefault();
    if (state.active >= 0) {
      choose(state.results[state.active], "search");
      $("search").blur();
    }
  }
}

function onKey(event) {
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName);
  if (typing || $("workspace").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key;
  if (key >= "1" && key <= "5") {
    const candidate = state.card?.candidates[Number(key) - 1];
    if (candidate) choose(candidate, "candidate");
  } else if (key === "Enter") {
    event.preventDefault();
    confirmCard();
  } else if (key === "/") {
    event.preventDefault();
    $("search").focus();
    $("search").select();
  } else if (key === "r" || key === "R") {
    rejectCard();
  } else if (key === "s" || key === "S") {
    skipCard();
  }
}

function start() {
  $("done-count").textContent = sessionStorage.getItem(DONE_KEY) || "0";
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (!value) return;
    localStorage.setItem(TOKEN_KEY, value);
    $("token-input").value = "";
    loadNext().catch((err) => setStatus(err.message));
  });
  $("sign-out").addEventListener("click", () => { localStorage.removeItem(TOKEN_KEY); showLogin(); });
  $("search").addEventListener("input", onSearchInput);
  $("search").addEventListener("keydown", onSearchKey);
  $("confirm").addEventListener("click", confirmCard);
  $("reject").addEventListener("click", rejectCard);
  $("skip").addEventListener("click", skipCard);
  document.addEventListener("keydown", onKey);
  if (token()) loadNext().catch((err) => setStatus(err.message));
  else showLogin();
}

start();
