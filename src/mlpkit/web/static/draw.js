// The draw page: a canvas drawn on with Pointer Events (mouse, touch, pen); while drawing, the
// picture is sent (debounced) to POST /api/predict as a PNG data URL, and the answer is shown:
// probability bars, the top label, the 28x28 input as the model sees it, the hidden activations.
"use strict";

(function () {
  const pad = document.getElementById("pad");
  const ctx = pad.getContext("2d");
  const preview = document.getElementById("preview");
  const bars = document.getElementById("bars");
  const layers = document.getElementById("layers");
  const label = document.getElementById("label");
  const confidence = document.getElementById("confidence");
  const status = document.getElementById("status");
  const picker = document.getElementById("model");
  const DEBOUNCE_MS = 120;
  let drawing = false;
  let last = null;
  let inked = false;
  let timer = null;
  let inFlight = false;
  let again = false;
  let generation = 0; // bumped by Clear: answers to an older drawing are dropped

  function blank() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    inked = false;
  }

  function point(event) {
    const box = pad.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) / box.width) * pad.width,
      y: ((event.clientY - box.top) / box.height) * pad.height,
    };
  }

  function stroke(from, to) {
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 20;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
    inked = true;
  }

  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    drawing = true;
    last = point(event);
    stroke(last, last);
    schedule();
  });
  pad.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) {
      const p = point(e);
      stroke(last, p);
      last = p;
    }
    schedule();
  });
  for (const type of ["pointerup", "pointercancel"]) {
    pad.addEventListener(type, () => {
      drawing = false;
      last = null;
      schedule();
    });
  }

  function schedule() {
    if (!inked) return;
    clearTimeout(timer);
    timer = setTimeout(send, DEBOUNCE_MS);
  }

  async function send() {
    if (!inked) return;
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    const sent = generation;
    const body = { image: pad.toDataURL("image/png") };
    if (picker && picker.value) body.model = picker.value;
    try {
      const response = await fetch("/api/predict", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      if (sent !== generation) {
        // the drawing was cleared meanwhile
      } else if (!response.ok) {
        status.textContent = answer.error || "the server refused the drawing";
      } else {
        show(answer);
        status.textContent = "model " + answer.model;
      }
    } catch (error) {
      status.textContent = "no answer from the server";
    } finally {
      inFlight = false;
      if (again) {
        again = false;
        send();
      }
    }
  }

  function show(answer) {
    const best = answer.probabilities.indexOf(Math.max(...answer.probabilities));
    label.textContent = String(answer.label);
    confidence.textContent = (100 * answer.probabilities[best]).toFixed(1) + "%";
    showBars(answer.classes, answer.probabilities, best);
    if (answer.input28) showPreview(answer.input28);
    showLayers(answer.activations);
    document.body.dataset.answered = "1";
  }

  function showBars(classes, probabilities, best) {
    while (bars.children.length > classes.length) bars.lastChild.remove();
    classes.forEach((name, i) => {
      let row = bars.children[i];
      if (!row) {
        row = document.createElement("div");
        row.className = "bar";
        const tag = document.createElement("span");
        tag.className = "bar-label";
        const track = document.createElement("span");
        track.className = "bar-track";
        const fill = document.createElement("span");
        fill.className = "bar-fill";
        track.appendChild(fill);
        const value = document.createElement("span");
        value.className = "bar-value";
        row.append(tag, track, value);
        bars.appendChild(row);
      }
      const p = probabilities[i];
      row.dataset.label = String(name);
      row.classList.toggle("best", i === best);
      row.children[0].textContent = String(name);
      row.children[1].firstChild.style.width = (100 * p).toFixed(1) + "%";
      row.children[2].textContent = (100 * p).toFixed(1) + "%";
    });
  }

  function showPreview(rows) {
    const h = rows.length;
    const w = rows[0].length;
    preview.width = w;
    preview.height = h;
    const pctx = preview.getContext("2d");
    const image = pctx.createImageData(w, h);
    rows.forEach((row, y) =>
      row.forEach((v, x) => {
        const k = 4 * (y * w + x);
        image.data[k] = image.data[k + 1] = image.data[k + 2] = v;
        image.data[k + 3] = 255;
      }),
    );
    pctx.putImageData(image, 0, 0);
    preview.dataset.drawn = "1";
  }

  function showLayers(activations) {
    while (layers.children.length > activations.length) layers.lastChild.remove();
    activations.forEach((units, i) => {
      let strip = layers.children[i];
      if (!strip) {
        strip = document.createElement("figure");
        strip.className = "layer";
        const caption = document.createElement("figcaption");
        const canvas = document.createElement("canvas");
        canvas.className = "strip";
        strip.append(caption, canvas);
        layers.appendChild(strip);
      }
      strip.firstChild.textContent = "layer " + (i + 1) + ": " + units.length + " units";
      heat(strip.lastChild, units);
    });
  }

  // One cell per unit, in rows of at most 64; colour by the activation scaled to the layer's
  // largest magnitude (warm: positive, cool: negative).
  function heat(canvas, units) {
    const perRow = Math.min(64, units.length);
    const rows = Math.ceil(units.length / perRow);
    canvas.width = perRow;
    canvas.height = rows;
    const c = canvas.getContext("2d");
    const image = c.createImageData(perRow, rows);
    const top = Math.max(1e-9, ...units.map(Math.abs));
    units.forEach((v, i) => {
      const t = v / top;
      const k = 4 * i;
      image.data[k] = t > 0 ? 255 : Math.round(255 * (1 + t));
      image.data[k + 1] = Math.round(255 * (1 - Math.abs(t) * 0.8));
      image.data[k + 2] = t < 0 ? 255 : Math.round(255 * (1 - t));
      image.data[k + 3] = 255;
    });
    for (let i = units.length; i < perRow * rows; i++) image.data[4 * i + 3] = 0;
    c.putImageData(image, 0, 0);
  }

  document.getElementById("clear").addEventListener("click", () => {
    generation += 1;
    clearTimeout(timer);
    blank();
    label.textContent = "?";
    confidence.textContent = "";
    bars.replaceChildren();
    layers.replaceChildren();
    preview.getContext("2d").clearRect(0, 0, preview.width, preview.height);
    delete preview.dataset.drawn;
    delete document.body.dataset.answered;
  });
  if (picker) picker.addEventListener("change", () => send());
  blank();
})();
