"""The vision-action network: one frame in, every head's logits out. Small (~1.9 M parameters)
and cheap (~165 M multiply-adds): it downsamples at once and spends its depth at low resolution.

    net = PixelPolicyNet()
    logits = net(x, h)         # x (N, 3, 210, 160) from models.spec.preprocess, h (N, HISTORY_COLS)
                               # history tokens and the place (models.spec) -> dict of head logits

Layout:
  stem      4x4 conv, stride 4            -> 53x40 (the pointer grid), 32 channels
  stage 1   2 residual 3x3 blocks at stride 4
  stage 2   2x2 conv stride 2 + 2 blocks  -> 27x20, 64 channels
  stage 3   2x2 conv stride 2 + 2 blocks  -> 14x10, 96 channels
  history   the last two actions (what was just typed) embedded into the [CLS] token
  context   2 transformer layers over the 140 stage-3 tokens and a [CLS] token: reading the
            instruction and relating it to the page is global work
  read      2 attention lookups from [CLS] into the 2120 stage-1 features (stride 4): a 10 px word
            or the next character to type is only resolved at that stride, not at 16. Each read's
            first head is an output too ("look", "look2"; "look" is exported too: the runtime keeps
            its place from it): it is taught to attend where the expert read (the glyph to type
            next, the label to click, grid-coordinate's y)
  place     each read's scores get a learned bias around the place: the cell read for the
            character just typed (the next one is a glyph to its right; the one to check, there)
  glance    after each read, the pixels of the 3x3 cells where it attended, into [CLS]
  glyph     ... and a small CNN on the 12x20 px around its most attended cell (the glyph itself),
            which also names it (the key that types it; taught on glyph sheets), into [CLS]
  heads     [CLS] -> kind, button, double, key, mods, scroll
            pointer: stage-1, -2 and -3 features at stride 4, and how much each cell looks like
            where the first read attended (cosine similarity of stage-1 features: the named word's
            copy on the page) and how likely it shows the glyph the glyph reader named there (a
            name map over every cell), modulated by [CLS] -> one logit per cell
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.spec import GLYPH_CLASSES, GRID, HEADS, HISTORY, HISTORY_VOCAB, INPUT_H, INPUT_W


def pad_to_grid(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, 210, 160) -> (N, 3, 212, 160): the stride-4 grid is then exactly 53 x 40."""
    return F.pad(x, (0, GRID.cols * 4 - INPUT_W, 0, GRID.rows * 4 - INPUT_H), value=-0.5)


_ONE_HOT = torch.eye(48).view(48, 3, 4, 4)


def cell_pixels(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, 212, 160) -> (N, 48, 2120): each 4x4 cell's RGB pixels, pixel_unshuffle(x, 4) order.
    A convolution with one-hot filters: exact, and faster in onnxruntime than the 6-d transpose
    pixel_unshuffle exports as."""
    return F.conv2d(x, _ONE_HOT.to(x.dtype), stride=4).flatten(2)


# moved[k][i, j] = att[i - dr, j - dc] for the k-th offset (dr, dc), row-major over -1..1 each.
_MOVES = torch.zeros(9, 1, 3, 3)
for _k, (_dr, _dc) in enumerate((dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)):
    _MOVES[_k, 0, 1 - _dr, 1 - _dc] = 1.0


class Block(nn.Module):
    """Residual 3x3 conv + BatchNorm + ReLU. Dense 3x3 convolutions train 2x faster on this CPU
    than depthwise-separable ones of a fraction of the multiply-adds (oneDNN's depthwise backward
    is slow), so the blocks are plain."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(ch)

    def forward(self, x):
        return x + F.relu(self.norm(self.conv(x)))


class Read(nn.Module):
    """[CLS] looks up fine detail: multi-head attention from one query onto keys and values of
    every stride-4 feature (computed once, shared by all reads), then an MLP. One query keeps it
    cheap, and it gives the global heads the resolution that text needs."""

    def __init__(self, c_query: int, heads: int = 4, d: int = 16):
        super().__init__()
        self.heads, self.d = heads, d
        self.norm = nn.LayerNorm(c_query)
        self.q = nn.Linear(c_query, heads * d)
        self.proj = nn.Linear(heads * d, c_query)
        self.mlp = nn.Sequential(nn.LayerNorm(c_query), nn.Linear(c_query, 2 * c_query), nn.GELU(),
                                 nn.Linear(2 * c_query, c_query))  # fmt: skip

    def forward(
        self, cls: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """cls (N, C); k, v (N, heads, d, L) (channels first: no transposes); bias (N, heads, L)
        added to the scores -> cls updated, and the first head's attention logits (N, L): where it
        read (supervised in training)."""
        n = cls.shape[0]
        q = self.q(self.norm(cls)).view(n, self.heads, 1, self.d)
        scores = q @ k / math.sqrt(self.d)  # N, heads, 1, L
        if bias is not None:
            scores = scores + bias[:, :, None]
        att = torch.softmax(scores, dim=-1)
        read = v @ att.view(n, self.heads, -1, 1)  # N, heads, d, 1
        cls = cls + self.proj(read.view(n, self.heads * self.d))
        return cls + self.mlp(cls), scores[:, 0, 0]


class Place(nn.Module):
    """Keeping one's place in the text: a learned attention bias over the cells within +-rows and
    +-cols of the cell read for the character just typed (models.spec: the history's place), per
    head; nothing where there is no place. Starts at zero, so it changes nothing until trained.
    `offsets` (computed once per step, shared by every read's Place) says which entry of the
    table each cell takes."""

    def __init__(self, heads: int, grid_rows: int, grid_cols: int, rows: int = 2, cols: int = 6):
        super().__init__()
        self.grid_cols, self.rows, self.cols = grid_cols, rows, cols
        self.table = nn.Parameter(torch.zeros(heads, (2 * rows + 1) * (2 * cols + 1)))
        cells = torch.arange(grid_rows * grid_cols)
        self.register_buffer("row_of", cells // grid_cols, persistent=False)
        self.register_buffer("col_of", cells % grid_cols, persistent=False)

    def offsets(self, place: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """place (N,) a cell or -1 -> each cell's table index (N, cells) and whether it is near."""
        at = place.clamp(min=0)[:, None]
        dr = self.row_of[None] - at // self.grid_cols
        dc = self.col_of[None] - at % self.grid_cols
        near = (dr.abs() <= self.rows) & (dc.abs() <= self.cols) & (place[:, None] >= 0)
        index = (dr.clamp(-self.rows, self.rows) + self.rows) * (2 * self.cols + 1) + dc.clamp(
            -self.cols, self.cols
        )
        return index + self.cols, near[:, None].to(self.table.dtype)

    def forward(self, offsets: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """-> bias (N, heads, cells)."""
        index, near = offsets
        return self.table[:, index].transpose(0, 1) * near


class Glance(nn.Module):
    """A close look where a read attended: the pixels of the 3x3 pointer cells (12x12 px) around
    each attended cell, weighted by the attention, through an MLP into [CLS]. A glyph's identity
    is in those few pixels; the read's 16-dim values alone decoded the letter to type poorly.
    The last layer starts at zero, so adding a Glance to a trained net changes nothing at first."""

    def __init__(self, c_in: int, c_out: int, rows: int, cols: int, hidden: int = 192):
        super().__init__()
        self.rows, self.cols = rows, cols
        self.mlp = nn.Sequential(nn.LayerNorm(9 * c_in), nn.Linear(9 * c_in, hidden), nn.GELU(),
                                 nn.Linear(hidden, c_out))  # fmt: skip
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, feats: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """feats (N, C, rows * cols), scores (N, rows * cols) attention logits -> (N, c_out)."""
        n, r, c = scores.shape[0], self.rows, self.cols
        att = torch.softmax(scores, dim=-1).view(n, 1, r, c)
        # The attention moved by each offset (dr, dc): feats @ moved = the features at attended
        # cell + offset. One conv with one-hot 3x3 filters (one ONNX node, not a pad and 9 slices).
        moved = F.conv2d(att, _MOVES.to(att.dtype), padding=1)
        seen = feats @ moved.view(n, 9, r * c).transpose(1, 2)  # N, C, 9
        return self.mlp(seen.reshape(n, -1))


class GlyphReader(nn.Module):
    """A sharp look where a read attended: the 12 x 20 px around its most attended cell (the glyph,
    its neighbours and the line's height, which tells s from S) through a small CNN into [CLS]. A
    Glance sees an attention-blend of shifted patches and an MLP must learn each shift apart; the
    convolutions see one patch and are the same at every shift. The patch is picked by argmax, so
    it teaches nothing about where to look (the look targets do). Its features also *name* the
    glyph (`name`: which key types it, taught on glyph sheets, emulator/envs/glyphs.py, where every
    glyph is labelled), and that reading enters [CLS] too (`spell`): typing a random password is
    then "type what the glyph reader says", not a guess from the word so far. Last layers zero at
    first."""

    ROWS, COLS = 1, 2  # the patch: cells within +-1 row and +-2 columns

    def __init__(self, c_out: int, rows: int, cols: int, ch: int = 32):
        super().__init__()
        self.rows, self.cols = rows, cols
        steps = [(i, j) for i in range(-self.ROWS, self.ROWS + 1) for j in range(-self.COLS, self.COLS + 1)]
        self.register_buffer("row_steps", torch.tensor([[i for i, _ in steps]]), persistent=False)
        self.register_buffer("col_steps", torch.tensor([[j for _, j in steps]]), persistent=False)
        self.cnn = nn.Sequential(
            nn.Conv2d(3, ch, 3, padding=1), nn.GELU(), nn.Conv2d(ch, ch, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(ch, ch, 3, padding=1), nn.GELU(), nn.Flatten(),
        )  # fmt: skip
        self.out = nn.Sequential(nn.LayerNorm(ch * 6 * 10), nn.Linear(ch * 6 * 10, c_out))
        self.name = nn.Linear(ch * 6 * 10, GLYPH_CLASSES)
        self.spell = nn.Linear(GLYPH_CLASSES, c_out)
        for layer in (self.out[-1], self.spell):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, pixels: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """pixels (N, 48, rows * cols): each cell's 4x4 RGB (pixel_unshuffle), scores (N, rows * cols)
        -> (N, c_out) into [CLS], and the glyph's name (N, GLYPH_CLASSES) probabilities."""
        seen = self.out[0](self.cnn(self.patch(pixels, scores.argmax(-1, keepdim=True))))
        named = torch.softmax(self.name(seen), -1)
        return self.out[1](seen) + self.spell(named), named

    def classify(self, patches: torch.Tensor) -> torch.Tensor:
        """patches (N, 3, 12, 20) from `patch` -> the glyph's name logits (N, GLYPH_CLASSES)."""
        return self.name(self.out[0](self.cnn(patches)))

    def patch(self, pixels: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
        """top (N, 1) a cell -> (N, 3, 12, 20): the frame around it (zeros beyond the grid). A
        gather of the 15 cells' pixels: a handful of ONNX ops (shifted one-hot maps took 30 slices)."""
        n, dr, dc = top.shape[0], self.ROWS, self.COLS
        rows = torch.div(top, self.cols, rounding_mode="floor") + self.row_steps
        cols = top % self.cols + self.col_steps  # N, 15 each
        inside = ((rows >= 0) & (rows < self.rows) & (cols >= 0) & (cols < self.cols)).to(pixels.dtype)
        cells = rows.clamp(0, self.rows - 1) * self.cols + cols.clamp(0, self.cols - 1)
        seen = pixels.gather(2, cells[:, None].expand(-1, pixels.shape[1], -1)) * inside[:, None]
        h, w = 2 * dr + 1, 2 * dc + 1  # seen: N, 48 (rgb, y, x), 15 (row, col)
        return seen.view(n, 3, 4, 4, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, 3, 4 * h, 4 * w)


class PixelPolicyNet(nn.Module):
    def __init__(self, dims: tuple[int, int, int] = (32, 64, 96), layers: int = 2, heads: int = 4):
        super().__init__()
        c1, c2, c3 = dims
        self.stem = nn.Sequential(nn.Conv2d(3, c1, 4, stride=4), nn.BatchNorm2d(c1), nn.GELU())
        self.stage1 = nn.Sequential(Block(c1), Block(c1))
        self.down2 = nn.Sequential(nn.Conv2d(c1, c2, 2, stride=2), nn.BatchNorm2d(c2))
        self.stage2 = nn.Sequential(Block(c2), Block(c2))
        self.down3 = nn.Sequential(nn.Conv2d(c2, c3, 2, stride=2), nn.BatchNorm2d(c3))
        self.stage3 = nn.Sequential(Block(c3), Block(c3))
        self.rows, self.cols = GRID.rows, GRID.cols  # 53 x 40
        self.h3, self.w3 = (self.rows + 3) // 4, (self.cols + 3) // 4  # 14 x 10
        self.pos = nn.Parameter(torch.zeros(1, self.h3 * self.w3 + 1, c3))
        self.cls = nn.Parameter(torch.zeros(1, 1, c3))
        self.history = nn.ModuleList([nn.Embedding(HISTORY_VOCAB, c3) for _ in range(HISTORY)])
        layer = nn.TransformerEncoderLayer(c3, heads, 2 * c3, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)  # fmt: skip
        self.context = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(c3)
        self.read_row = nn.Parameter(torch.zeros(1, c1, self.rows, 1))
        self.read_col = nn.Parameter(torch.zeros(1, c1, 1, self.cols))
        self.read_kv = nn.Conv2d(c1, 2 * 4 * 16, 1)
        self.reads = nn.ModuleList([Read(c3, 4, 16), Read(c3, 4, 16)])
        self.glances = nn.ModuleList([Glance(3 * 16, c3, self.rows, self.cols) for _ in self.reads])
        self.places = nn.ModuleList([Place(4, self.rows, self.cols) for _ in self.reads])
        self.glyphs = nn.ModuleList([GlyphReader(c3, self.rows, self.cols) for _ in self.reads])
        self.read_norm = nn.LayerNorm(c3)
        # ("head_" prefix: a module named "double" would shadow nn.Module.double)
        self.global_heads = nn.ModuleDict(
            {f"head_{k}": nn.Linear(c3, n) for k, n in HEADS.items() if k != "cell"}
        )
        p = 64
        # The pointer features are a 1x1 projection of [stage 1, stage 2 up, context up]. Projecting
        # each part at its own resolution before upsampling is the same map and far cheaper.
        self.point1 = nn.Conv2d(c1, p, 1)
        self.point2 = nn.Conv2d(c2, p, 1, bias=False)
        self.point3 = nn.Conv2d(c3, p, 1, bias=False)
        self.point_film = nn.Linear(c3, 2 * p)
        # Matching: the stage-1 features where the first read looked (a glyph of the instruction),
        # as a template; its cosine similarity with every cell's features enters the pointer
        # features along a learned direction, zero at first (an older model says what it said).
        self.match_proj = nn.Conv2d(c1, 32, 1)
        self.match_in = nn.Parameter(torch.zeros(1, p, 1))
        # Every cell's glyph named (taught on glyph sheets; the last class: no glyph near), and how
        # much each cell shows the glyph the first read named, in along a learned direction (zero).
        self.match_names = nn.Conv2d(c1, GLYPH_CLASSES + 1, 1)
        self.match_names_in = nn.Parameter(torch.zeros(1, p, 1))
        self.point_out = nn.Parameter(torch.randn(p) * 0.05)
        self.point_bias = nn.Parameter(torch.zeros(1))
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.cls, std=0.02)
        nn.init.normal_(self.read_row, std=0.02)
        nn.init.normal_(self.read_col, std=0.02)

    def name_cells(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 3, 210, 160) -> every cell's glyph name logits (N, GLYPH_CLASSES + 1, 2120)."""
        return self.match_names(self.stage1(self.stem(pad_to_grid(x)))).flatten(2)

    def forward(self, x: torch.Tensor, history: torch.Tensor) -> dict[str, torch.Tensor]:
        n = x.shape[0]
        # history: HISTORY action tokens, then the place (cell + 1; 0 none; absent in format 2)
        place = history[:, HISTORY] - 1 if history.shape[1] > HISTORY else torch.full_like(history[:, 0], -1)
        x = pad_to_grid(x)
        f1 = self.stage1(self.stem(x))  # 53 x 40
        f2 = self.stage2(self.down2(F.pad(f1, (0, self.cols % 2, 0, self.rows % 2))))  # 27 x 20
        f3 = self.stage3(self.down3(F.pad(f2, (0, f2.shape[3] % 2, 0, f2.shape[2] % 2))))  # 14 x 10
        cls = (
            self.cls.expand(n, -1, -1)
            + sum(emb(history[:, i]) for i, emb in enumerate(self.history))[:, None]
        )
        tokens = torch.cat([cls, f3.flatten(2).transpose(1, 2)], 1) + self.pos
        tokens = self.out_norm(self.context(tokens))
        kv = self.read_kv(f1 + self.read_row + self.read_col).view(n, 2, 4, 16, -1)  # N, k|v, heads, d, 2120
        k, v = kv[:, 0], kv[:, 1]
        cls = tokens[:, 0]
        pixels = cell_pixels(x)
        looks, names = [], []
        offsets = self.places[0].offsets(place)
        for read, glance, keep, glyph in zip(self.reads, self.glances, self.places, self.glyphs, strict=True):
            cls, look = read(cls, k, v, keep(offsets))
            spelt, named = glyph(pixels, look)
            cls = cls + glance(pixels, look) + spelt
            looks.append(look)
            names.append(named)
        cls = self.read_norm(cls)
        out = {name.removeprefix("head_"): head(cls) for name, head in self.global_heads.items()}
        out["look"], out["look2"] = looks  # each read's first head: taught where the expert read
        out["name"] = names[0]  # what the first read's glyph is (the key typing it, and Shift)
        ctx3 = tokens[:, 1:].transpose(1, 2).reshape(n, -1, self.h3, self.w3)
        up2 = F.interpolate(self.point2(f2), scale_factor=2, mode="nearest")[:, :, : self.rows, : self.cols]
        up3 = F.interpolate(self.point3(ctx3), scale_factor=4, mode="nearest")[:, :, : self.rows, : self.cols]
        feat = self.point1(f1) + up2 + up3
        z = F.normalize(self.match_proj(f1).flatten(2), dim=1)  # N, 32, 2120
        template = F.normalize(z @ torch.softmax(looks[0], dim=-1)[:, :, None], dim=1)  # N, 32, 1
        similar = template.transpose(1, 2) @ z  # N, 1, 2120: how much each cell looks like it
        feat = feat + (self.match_in @ similar).view(n, -1, self.rows, self.cols)
        # ... and by name: how likely each cell shows the glyph the first read named (whatever its
        # size, weight and colour there: a link's text is larger than the instruction's).
        # (The 1x1 conv as a matmul with cells first: a softmax over the last axis is 3x faster in
        # onnxruntime than over channels, which it transposes to and back.)
        w, b = self.match_names.weight, self.match_names.bias
        logits = f1.flatten(2).transpose(1, 2) @ w.view(w.shape[0], -1).t() + b  # N, 2120, classes + 1
        named = F.pad(names[0], (0, 1))[:, :, None]  # N, classes + 1 ("no glyph": weight 0), 1
        same = (torch.softmax(logits, -1) @ named).transpose(1, 2)  # N, 1, 2120
        feat = feat + (self.match_names_in @ same).view(n, -1, self.rows, self.cols)
        scale, shift = self.point_film(cls)[:, :, None, None].chunk(2, dim=1)
        feat = F.relu(feat * (1 + scale) + shift)
        # One output channel: a weighted channel sum as one matmul (a 1x1 conv with one filter is
        # slow to train on CPU, and onnxruntime's einsum is slow to run).
        cell = self.point_out.view(1, 1, -1) @ feat.flatten(2)  # N, 1, 53 * 40
        out["cell"] = cell.view(n, -1) + self.point_bias  # row-major like PointerGrid
        return out


def glyph_patches(
    frames: np.ndarray, cells: np.ndarray, frame_of: np.ndarray, batch: int = 256
) -> torch.Tensor:
    """What a GlyphReader sees when it reads `cells` (M,) of `frames` (N, 210, 160, 3) uint8 (glyph
    `i` on frame `frame_of[i]`) -> (M, 3, 12, 20) float16 patches, preprocessed and padded exactly
    as in forward (training its `name` on glyph sheets)."""
    reader = GlyphReader(1, GRID.rows, GRID.cols)
    out = []
    for i in range(0, len(cells), batch):
        x = pad_to_grid(
            torch.from_numpy(frames[frame_of[i : i + batch]]).permute(0, 3, 1, 2).float() / 255.0 - 0.5
        )
        top = torch.from_numpy(cells[i : i + batch]).long()[:, None]
        out.append(reader.patch(cell_pixels(x), top).half())
    return torch.cat(out) if out else torch.zeros(0, 3, 12, 20, dtype=torch.float16)


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
