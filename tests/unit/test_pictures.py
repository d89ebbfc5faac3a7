"""Unit tests for priors/gmm/pictures.py: component grids and frequency bar charts are valid PNGs of the documented size, written atomically."""

import os

import numpy as np
import PIL.Image
import pytest

from priors.gmm import pictures

#----------------------------------------------------------------------------

def _open_png(path):
    with PIL.Image.open(path) as img:
        img.load()
        return img.format, img.mode, img.size, np.asarray(img)


def _grid_size(num_rows, per_row, cell):
    width = pictures.GRID_LABEL_WIDTH + per_row * (cell + pictures.GRID_GAP) + pictures.GRID_GAP
    height = num_rows * (max(cell, pictures.GRID_MIN_ROW) + pictures.GRID_GAP) + pictures.GRID_GAP
    return width, height


def _fake_dataset(num, res=16, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 256, size=[channels, res, res], dtype=np.uint8), np.zeros([0], np.float32)) for _ in range(num)]

#----------------------------------------------------------------------------
# Bar chart.

def test_bar_chart_is_a_png_of_the_requested_size(tmp_path):
    path = tmp_path / 'sub' / 'freqs.png'
    pictures.frequency_bar_chart([0.5, 0.3, 0.2], [0.1, 0.6, 0.3], str(path), width=500, height=300, title='Components')
    fmt, mode, size, pixels = _open_png(path)
    assert (fmt, mode, size) == ('PNG', 'RGB', (500, 300))
    for colour in pictures.BAR_COLOURS:  # both series are drawn
        assert np.all(pixels == colour, axis=2).sum() > 100
    assert [f for f in os.listdir(path.parent) if f != 'freqs.png'] == []  # no temporary files left


def test_bar_chart_bar_heights_follow_the_frequencies(tmp_path):
    path = tmp_path / 'freqs.png'
    pictures.frequency_bar_chart([0.2, 0.4], None, str(path))
    pixels = _open_png(path)[3]
    real = np.all(pixels == pictures.BAR_COLOURS[0], axis=2)
    left_half, right_half = real[:, :pixels.shape[1] // 2 + 26], real[:, pixels.shape[1] // 2 + 26:]
    height = lambda mask: np.flatnonzero(mask.any(axis=1)).size
    assert height(right_half) == pytest.approx(2 * height(left_half), rel=0.05)
    assert not np.all(pixels == pictures.BAR_COLOURS[1], axis=2).any()  # no generated series


def test_bar_chart_many_components_and_zero_bars(tmp_path):
    real = np.random.default_rng(0).dirichlet(np.ones(70))
    gen = np.zeros(70)
    gen[3] = 1.0
    pictures.frequency_bar_chart(real, gen, str(tmp_path / 'many.png'))
    assert _open_png(tmp_path / 'many.png')[2] == (640, 360)


@pytest.mark.parametrize('real, gen, match', [
    ([0.5, 0.5], [1.0], r'real_freqs has 2 components but gen_freqs has 1'),
    ([0.5, -0.1], None, r'real_freqs must be finite and >= 0, got \[0.5, -0.1\]'),
    ([[0.5, 0.5]], None, r'real_freqs must be a non-empty 1-D vector, got shape \[1, 2\]'),
])
def test_bar_chart_errors(tmp_path, real, gen, match):
    with pytest.raises(ValueError, match=match):
        pictures.frequency_bar_chart(real, gen, str(tmp_path / 'x.png'))
    assert not os.path.exists(tmp_path / 'x.png')

#----------------------------------------------------------------------------
# Component grid.

def test_component_grid_size_and_content(tmp_path):
    dataset = _fake_dataset(30)
    assignments = np.arange(30) % 3
    path = tmp_path / 'grid.png'
    pictures.component_grid(dataset, assignments, [0.5, 0.3, 0.2], str(path), per_component=4, cell_size=32)
    fmt, _, size, pixels = _open_png(path)
    assert fmt == 'PNG' and size == _grid_size(3, 4, 32)

    # The first cell of row 0 holds the first picked image, scaled up 2x.
    first = pictures.pick_component_examples(assignments, 3, 4, seed=0)[0][0]
    x0, y0 = pictures.GRID_LABEL_WIDTH + pictures.GRID_GAP, pictures.GRID_GAP
    cell = pixels[y0:y0 + 32, x0:x0 + 32]
    np.testing.assert_array_equal(cell[::2, ::2], dataset[first][0].transpose(1, 2, 0))


def test_grid_with_empty_component_grayscale_and_default_cell(tmp_path):
    dataset = _fake_dataset(10, res=16, channels=1)
    path = tmp_path / 'gray.png'
    pictures.component_grid(dataset, np.zeros(10, dtype=np.int64), [1.0, 0.0], str(path), per_component=3)
    assert _open_png(path)[2] == _grid_size(2, 3, 32)  # 16 px images are shown at least 32 px


def test_pick_component_examples_is_seeded_and_respects_membership():
    assignments = np.array([0, 1, 0, 2, 0, 1, 0, 0])
    picks = pictures.pick_component_examples(assignments, 4, per_component=3, seed=5)
    assert [len(p) for p in picks] == [3, 2, 1, 0]
    for c, p in enumerate(picks):
        assert np.all(assignments[p] == c) and len(set(p.tolist())) == len(p)
    again = pictures.pick_component_examples(assignments, 4, per_component=3, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(picks, again))


def test_grid_errors():
    with pytest.raises(ValueError, match='got 2 rows of images but 3 frequencies'):
        pictures.draw_component_grid([[], []], [0.5, 0.3, 0.2])
    with pytest.raises(ValueError, match=r'Grid images must be uint8 \[C, H, W\] with C = 1 or 3, got float64 \[4, 8, 8\]'):
        pictures.draw_component_grid([[np.zeros([4, 8, 8])]], [1.0])

#----------------------------------------------------------------------------
