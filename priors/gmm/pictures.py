"""Pictures of a PriorGAN prior (Pillow only): real images per GMM component (Figure 2 of Gu et al., "PriorGAN") and real vs generated component frequencies."""

import io
import os

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont

import dnnlib

#----------------------------------------------------------------------------
# Layout constants (pixels).

GRID_GAP = 2            # space between cells and around the grid
GRID_LABEL_WIDTH = 64   # strip left of each row: component index and frequency
GRID_MIN_ROW = 28       # rows are at least this tall, so that two text lines fit
BACKGROUND = (32, 32, 32)
TEXT = (235, 235, 235)
BAR_COLOURS = ((66, 133, 196), (235, 125, 40))   # real, generated

#----------------------------------------------------------------------------
# PIL's built-in font (a scalable one on Pillow >= 10.1).

def _font(size=11):
    try:
        return PIL.ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return PIL.ImageFont.load_default()

def _text_size(draw, text, font):
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top

#----------------------------------------------------------------------------
# Write a PIL image as PNG so that readers never see a partial file.

def save_png(image, path):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    buffer = io.BytesIO()
    image.save(buffer, format='PNG')
    with dnnlib.util.atomic_write(path, 'wb') as f:
        f.write(buffer.getvalue())

#----------------------------------------------------------------------------
# Check a frequency vector: finite, >= 0, 1-D. Returns float64 numpy.

def _as_freqs(values, what):
    try:
        freqs = np.asarray(values.detach().cpu() if hasattr(values, 'detach') else values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{what} must be a 1-D sequence of numbers, got {type(values).__name__}') from err
    if freqs.ndim != 1 or freqs.size == 0:
        raise ValueError(f'{what} must be a non-empty 1-D vector, got shape {list(freqs.shape)}')
    if not np.all(np.isfinite(freqs)) or np.any(freqs < 0):
        raise ValueError(f'{what} must be finite and >= 0, got {freqs.tolist()}')
    return freqs

#----------------------------------------------------------------------------
# Random examples of each component: for every component c < num_components,
# up to `per_component` dataset indices with assignments == c, drawn without
# replacement from a generator seeded with `seed`.

def pick_component_examples(assignments, num_components, per_component=8, seed=0):
    assignments = np.asarray(assignments, dtype=np.int64)
    rng = np.random.default_rng(seed)
    picks = []
    for c in range(num_components):
        members = np.flatnonzero(assignments == c)
        count = min(per_component, members.size)
        picks.append(np.sort(rng.choice(members, size=count, replace=False)) if count > 0 else members[:0])
    return picks

#----------------------------------------------------------------------------
# Grid of real images per component, as in the paper's Figure 2 (here one row
# per component). rows: list over components of lists of uint8 images
# [C, H, W] (C = 1 or 3); freqs: real frequency of each component. Every
# image is scaled to cell_size x cell_size. The picture is
#   width  = GRID_LABEL_WIDTH + per_row * (cell_size + GRID_GAP) + GRID_GAP
#   height = len(rows) * (max(cell_size, GRID_MIN_ROW) + GRID_GAP) + GRID_GAP
# Returns the PIL image.

def draw_component_grid(rows, freqs, cell_size=64, per_row=None):
    freqs = _as_freqs(freqs, 'freqs')
    if len(rows) != freqs.size:
        raise ValueError(f'draw_component_grid: got {len(rows)} rows of images but {freqs.size} frequencies; give one per component')
    if isinstance(cell_size, bool) or not isinstance(cell_size, (int, np.integer)) or cell_size < 1:
        raise ValueError(f'cell_size must be a positive integer, got {cell_size!r}')
    per_row = max([len(r) for r in rows] + [1]) if per_row is None else per_row
    row_height = max(cell_size, GRID_MIN_ROW)
    width = GRID_LABEL_WIDTH + per_row * (cell_size + GRID_GAP) + GRID_GAP
    height = len(rows) * (row_height + GRID_GAP) + GRID_GAP
    canvas = PIL.Image.new('RGB', (width, height), BACKGROUND)
    draw = PIL.ImageDraw.Draw(canvas)
    font = _font()

    for c, (images, freq) in enumerate(zip(rows, freqs)):
        top = GRID_GAP + c * (row_height + GRID_GAP)

        # Label strip: component index over its frequency.
        draw.text((GRID_GAP + 2, top + 1), f'#{c}', fill=TEXT, font=font)
        draw.text((GRID_GAP + 2, top + row_height // 2), f'{freq * 100:.1f}%', fill=TEXT, font=font)

        # The images, scaled to the cell.
        for j, image in enumerate(images[:per_row]):
            tile = _to_pil(image)
            if tile.size != (cell_size, cell_size):
                shrink = tile.size[0] > cell_size
                tile = tile.resize((cell_size, cell_size), PIL.Image.LANCZOS if shrink else PIL.Image.NEAREST)
            canvas.paste(tile, (GRID_LABEL_WIDTH + GRID_GAP + j * (cell_size + GRID_GAP), top))
    return canvas

# uint8 [C, H, W] (C = 1 or 3) -> RGB PIL image.
def _to_pil(image):
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f'Grid images must be uint8 [C, H, W] with C = 1 or 3, got {image.dtype} {list(image.shape)}')
    if image.shape[0] == 1:
        return PIL.Image.fromarray(image[0], 'L').convert('RGB')
    return PIL.Image.fromarray(image.transpose(1, 2, 0), 'RGB')

#----------------------------------------------------------------------------
# The grid for a built prior: `per_component` random real images of each
# component (dataset: anything whose [idx] gives (uint8 [C, H, W], label)),
# written to `path` as PNG. cell_size None = the image side clipped to
# [32, 128]. Returns the PIL image, or None for data that are not images (the
# toy lab's 2-D points, which training/toy_pictures.py draws instead).

def component_grid(dataset, assignments, freqs, path, per_component=8, seed=0, cell_size=None):
    if getattr(dataset, 'num_channels', 3) not in (1, 3):
        return None
    freqs = _as_freqs(freqs, 'freqs')
    picks = pick_component_examples(assignments, freqs.size, per_component, seed)
    rows = [[dataset[int(idx)][0] for idx in idx_list] for idx_list in picks]
    if cell_size is None:
        side = max([np.asarray(r[0]).shape[-1] for r in rows if len(r) > 0] + [32])
        cell_size = int(np.clip(side, 32, 128))
    canvas = draw_component_grid(rows, freqs, cell_size=cell_size, per_row=per_component)
    save_png(canvas, path)
    return canvas

#----------------------------------------------------------------------------
# Grouped bar chart of component frequencies: for each component a real bar
# and (if gen_freqs is given) a generated bar, with a y axis in percent, the
# component index under each group and a legend. Written to `path` as a PNG
# of exactly width x height pixels. Returns the PIL image.

def frequency_bar_chart(real_freqs, gen_freqs, path, width=640, height=360, title=None, labels=('real', 'generated')):
    real = _as_freqs(real_freqs, 'real_freqs')
    gen = _as_freqs(gen_freqs, 'gen_freqs') if gen_freqs is not None else None
    if gen is not None and gen.size != real.size:
        raise ValueError(f'frequency_bar_chart: real_freqs has {real.size} components but gen_freqs has {gen.size}; '
                         f'both must come from the same prior')
    if width < 160 or height < 120:
        raise ValueError(f'frequency_bar_chart: the chart must be at least 160x120 pixels, got {width}x{height}')
    series = [real] if gen is None else [real, gen]
    num_components = real.size

    canvas = PIL.Image.new('RGB', (width, height), (255, 255, 255))
    draw = PIL.ImageDraw.Draw(canvas)
    font = _font()
    ink = (40, 40, 40)

    # Plot area and the y scale: 0 up to a round number above the tallest bar.
    left, right, top, bottom = 52, width - 12, 30, height - 26
    peak = max(float(s.max()) for s in series)
    step = _nice_step(max(peak, 1e-6) / 4)
    y_max = step * max(1, int(np.ceil(peak / step - 1e-9)))
    to_y = lambda v: bottom - (bottom - top) * (v / y_max)

    # Y axis with ticks and light grid lines.
    num_ticks = int(round(y_max / step))
    for k in range(num_ticks + 1):
        value = k * step
        y = to_y(value)
        draw.line([(left, y), (right, y)], fill=(225, 225, 225))
        text = f'{value * 100:.{_decimals(step * 100)}f}%'
        tw, th = _text_size(draw, text, font)
        draw.text((left - 6 - tw, y - th / 2 - 1), text, fill=ink, font=font)
    draw.line([(left, top), (left, bottom)], fill=ink)
    draw.line([(left, bottom), (right, bottom)], fill=ink)

    # Bars, grouped per component, and every `label_every`-th component index.
    group = (right - left) / num_components
    bar = group * 0.8 / len(series)
    label_every = int(np.ceil(num_components / max(1, (right - left) // 24)))
    for c in range(num_components):
        x0 = left + c * group + group * 0.1
        for s, values in enumerate(series):
            if values[c] > 0:
                bx = x0 + s * bar
                draw.rectangle([bx, min(to_y(values[c]), bottom - 1), max(bx, bx + bar - 1), bottom - 1], fill=BAR_COLOURS[s])
        if c % label_every == 0:
            text = str(c)
            tw, _ = _text_size(draw, text, font)
            draw.text((left + (c + 0.5) * group - tw / 2, bottom + 4), text, fill=ink, font=font)

    # Title (left) and legend (right) above the plot.
    if title:
        draw.text((left, 8), title, fill=ink, font=font)
    x = right
    for s in reversed(range(len(series))):
        tw, th = _text_size(draw, labels[s], font)
        x -= tw
        draw.text((x, 8), labels[s], fill=ink, font=font)
        x -= 14
        draw.rectangle([x, 10, x + 9, 19], fill=BAR_COLOURS[s])
        x -= 12

    save_png(canvas, path)
    return canvas

# A round tick step (1, 2 or 5 times a power of ten) not below `raw`.
def _nice_step(raw):
    power = 10.0 ** np.floor(np.log10(raw))
    for mult in (1, 2, 5, 10):
        if mult * power >= raw - 1e-12:
            return mult * power
    return 10 * power

# Decimals needed to print multiples of `step` exactly.
def _decimals(step):
    return int(max(0, -np.floor(np.log10(step) + 1e-9)))

#----------------------------------------------------------------------------
