"""A tiny synthetic visual world of coloured shapes, its renderer and its templated text.

Why this world: the demo pipeline trains a ~5M-parameter model that sees each image at 56x56 or 64x64
(a 4x4 or so patch grid). Everything here is chosen so that such a model can actually learn it:

- shapes sit in the cells of a 2x2 grid, so at 56 px a cell is 28 px (2x2 ViT patches) and a large shape
  fills most of it; a small one is still ~14 px wide;
- five saturated, well separated colours on one light background;
- answers are short closed-vocabulary strings (a colour, a kind, a cell name, a digit, yes/no).

The priors are deliberately *not* uniform: colours and kinds have skewed frequencies and later shapes
often copy the colour (or kind) of an earlier one. That gives POPE's "popular" (frequent objects) and
"adversarial" (co-occurring objects) negative sampling something real to bite on.

All randomness comes from a caller-supplied ``random.Random`` so that the writers can keep disjoint,
seeded streams per output file.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (222, 38, 38),
    "green": (34, 163, 62),
    "blue": (38, 88, 224),
    "yellow": (240, 200, 16),
    "purple": (146, 56, 186),
}
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
COLOR_WEIGHTS: tuple[float, ...] = (0.30, 0.24, 0.20, 0.15, 0.11)
KINDS: tuple[str, ...] = ("circle", "square", "triangle")
KIND_WEIGHTS: tuple[float, ...] = (0.45, 0.33, 0.22)
SIZES: tuple[str, ...] = ("small", "large")
# Cells of the 2x2 grid in reading order; the index is the cell id.
POSITIONS: tuple[str, ...] = ("top left", "top right", "bottom left", "bottom right")
BACKGROUND: tuple[int, int, int] = (246, 245, 240)
JITTER_STEPS = 3  # a shape's centre moves by dx, dy in [-3, 3] steps inside its cell
_EXTENT = {"small": 0.50, "large": 0.80}  # side of the shape's bounding box, as a fraction of the cell
_COUNT_WORDS = ("zero", "one", "two", "three", "four")


@dataclass(frozen=True, order=True)
class Shape:
    """One shape: which grid cell it occupies, what it is, and a small jitter of its centre."""

    cell: int
    kind: str
    color: str
    size: str
    dx: int = 0
    dy: int = 0

    @property
    def position(self) -> str:
        return POSITIONS[self.cell]

    @property
    def row(self) -> int:
        return self.cell // 2

    @property
    def col(self) -> int:
        return self.cell % 2

    @property
    def name(self) -> str:
        """The object name used by POPE-style questions, e.g. ``red circle``."""
        return f"{self.color} {self.kind}"


@dataclass(frozen=True)
class Scene:
    """1-3 shapes in distinct cells, sorted by cell; no two shapes share both colour and kind."""

    shapes: tuple[Shape, ...]

    @property
    def objects(self) -> list[str]:
        return [s.name for s in self.shapes]

    def with_color(self, color: str) -> list[Shape]:
        return [s for s in self.shapes if s.color == color]

    def with_kind(self, kind: str) -> list[Shape]:
        return [s for s in self.shapes if s.kind == kind]


ALL_OBJECTS: tuple[str, ...] = tuple(f"{c} {k}" for c in COLOR_NAMES for k in KINDS)


# ---------------------------------------------------------------------------------------------------------
# sampling and rendering


def sample_scene(rng: random.Random, n_shapes: int | None = None) -> Scene:
    """Draw a scene from the (skewed, correlated) world prior.

    ``n_shapes`` forces the number of shapes (POPE needs three objects per image).
    """
    n = n_shapes if n_shapes is not None else rng.choices((1, 2, 3), weights=(0.25, 0.35, 0.40))[0]
    if not 1 <= n <= 3:
        raise ValueError(f"a scene holds 1-3 shapes, got {n}")
    cells = sorted(rng.sample(range(len(POSITIONS)), n))
    taken: set[tuple[str, str]] = set()
    shapes: list[Shape] = []
    for cell in cells:
        while True:
            color = rng.choices(COLOR_NAMES, weights=COLOR_WEIGHTS)[0]
            kind = rng.choices(KINDS, weights=KIND_WEIGHTS)[0]
            if shapes:
                anchor = rng.choice(shapes)
                u = rng.random()
                if u < 0.40:  # same colour as an earlier shape, usually another kind
                    color = anchor.color
                elif u < 0.55:  # same kind as an earlier shape
                    kind = anchor.kind
            if (color, kind) not in taken:
                break
        taken.add((color, kind))
        size = rng.choice(SIZES)
        dx = rng.randint(-JITTER_STEPS, JITTER_STEPS)
        dy = rng.randint(-JITTER_STEPS, JITTER_STEPS)
        shapes.append(Shape(cell=cell, kind=kind, color=color, size=size, dx=dx, dy=dy))
    return Scene(shapes=tuple(shapes))


def _geometry(s: Shape, size: int) -> tuple[float, tuple[int, int, int, int]]:
    """The shape's horizontal centre and the integer box PIL draws it in (corners inclusive)."""
    cell = size / 2
    extent = _EXTENT[s.size] * cell
    slack = 0.7 * (cell - extent) / 2
    cx = (s.col + 0.5) * cell + s.dx / JITTER_STEPS * slack
    cy = (s.row + 0.5) * cell + s.dy / JITTER_STEPS * slack
    half = extent / 2
    return cx, (round(cx - half), round(cy - half), round(cx + half), round(cy + half))


def shape_box(s: Shape, size: int) -> tuple[int, int, int, int]:
    """Pixel box ``(x1, y1, x2, y2)`` that :func:`render` fills for ``s``, with exclusive right/bottom ends.

    Grounding benchmarks (RefCOCO) need the true extent of a drawn object; PIL draws the corners of its
    box inclusively, so the covered pixels are x1..x2-1 and y1..y2-1 (triangles share the same box).
    """
    x1, y1, x2, y2 = _geometry(s, size)[1]
    return x1, y1, x2 + 1, y2 + 1


def render(scene: Scene, size: int = 224) -> Image.Image:
    """Draw the scene as an RGB image with a plain light background (deterministic, no antialiasing)."""
    img = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for s in scene.shapes:
        cx, box = _geometry(s, size)
        fill = COLORS[s.color]
        if s.kind == "circle":
            draw.ellipse(box, fill=fill)
        elif s.kind == "square":
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(round(cx), box[1]), (box[0], box[3]), (box[2], box[3])], fill=fill)
    return img


# ---------------------------------------------------------------------------------------------------------
# captions


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _phrase(s: Shape, size: bool = True, position: bool = False) -> str:
    words = f"a {s.size} {s.color} {s.kind}" if size else f"a {s.color} {s.kind}"
    return f"{words} in the {s.position}" if position else words


def caption_templates(scene: Scene) -> list[str]:
    """Every paraphrase of the scene's one-sentence caption (seven, all distinct).

    Shapes are always listed in reading order so that the captioner has one consistent order to learn.
    """
    full = _join([_phrase(s) for s in scene.shapes])
    short = _join([_phrase(s, size=False) for s in scene.shapes])
    placed = _join([_phrase(s, position=True) for s in scene.shapes])
    n = len(scene.shapes)
    count = f"{_COUNT_WORDS[n]} shape" + ("s" if n > 1 else "")
    be = "is" if n == 1 else "are"
    return [
        _cap(f"{full} on a plain white background."),
        f"An image of {full}.",
        f"A picture showing {short}.",
        f"There {be} {count} in the image: {short}.",
        _cap(f"{placed}."),
        f"A simple drawing of {full} on a light background.",
        _cap(f"{count} on a white background: {short}."),
    ]


def describe(scene: Scene) -> str:
    """The scene in words, for the text-only corpus the demo LLM is pretrained on (``Picture: ...``).

    Every shape with its size, colour, kind and cell, in reading order: the text holds everything the
    rendered image shows, so a question about the image has the same answer about this text.
    """
    return "Picture: " + ", ".join(_phrase(s, position=True) for s in scene.shapes) + "."


def caption(scene: Scene, rng: random.Random) -> str:
    """One caption, paraphrase drawn at random."""
    return rng.choice(caption_templates(scene))


def reference_captions(scene: Scene, rng: random.Random, n: int = 5) -> list[str]:
    """``n`` distinct reference captions, like the five human captions of a COCO image."""
    return rng.sample(caption_templates(scene), n)


# ---------------------------------------------------------------------------------------------------------
# short-answer questions


@dataclass(frozen=True)
class QA:
    """A bare question (no prompt suffix) with its canonical short answer (VQA style: lowercase)."""

    question: str
    answer: str
    family: str  # color | shape | count | position | existence | size
    answer_type: str  # VQAv2 answer_type: "yes/no", "number" or "other"
    question_type: str  # VQAv2-style question prefix


def _color_qas(scene: Scene) -> list[QA]:
    out = []
    for s in scene.shapes:
        refs = [f"the shape in the {s.position}"]
        if len(scene.with_kind(s.kind)) == 1:
            refs.append(f"the {s.kind}")
        elif sum(t.kind == s.kind and t.size == s.size for t in scene.shapes) == 1:
            refs.append(f"the {s.size} {s.kind}")
        for ref in refs:
            out.append(QA(f"What color is {ref}?", s.color, "color", "other", "what color is the"))
    return out


def _shape_qas(scene: Scene) -> list[QA]:
    out = [QA(f"What shape is in the {s.position}?", s.kind, "shape", "other", "what shape is") for s in scene.shapes]
    for s in scene.shapes:
        if len(scene.with_color(s.color)) == 1:
            out.append(QA(f"What shape is the {s.color} object?", s.kind, "shape", "other", "what shape is the"))
    return out


def _count_qas(scene: Scene) -> list[QA]:
    n = str(len(scene.shapes))
    out = [
        QA("How many shapes are there?", n, "count", "number", "how many"),
        QA("How many shapes are in the image?", n, "count", "number", "how many"),
    ]
    # every present colour / kind, plus the first absent one of each (answer 0)
    colors = [c for c in COLOR_NAMES if scene.with_color(c)]
    colors += [c for c in COLOR_NAMES if c not in colors][:1]
    kinds = [k for k in KINDS if scene.with_kind(k)]
    kinds += [k for k in KINDS if k not in kinds][:1]
    for c in colors:
        out.append(QA(f"How many {c} shapes are there?", str(len(scene.with_color(c))), "count", "number", "how many"))
    for k in kinds:
        out.append(QA(f"How many {k}s are there?", str(len(scene.with_kind(k))), "count", "number", "how many"))
    return out


def _position_qas(scene: Scene) -> list[QA]:
    return [QA(f"Where is the {s.name}?", s.position, "position", "other", "where is the") for s in scene.shapes]


def _size_qas(scene: Scene) -> list[QA]:
    return [QA(f"Is the {s.name} large or small?", s.size, "size", "other", "is the") for s in scene.shapes]


def absent_objects(scene: Scene) -> list[str]:
    """Objects (``colour kind``) that are not in the scene, in a fixed order."""
    present = set(scene.objects)
    return [o for o in ALL_OBJECTS if o not in present]


def hard_absent_objects(scene: Scene) -> list[str]:
    """Absent objects that share a colour or a kind with a present one (they test attribute binding)."""
    colors = {s.color for s in scene.shapes}
    kinds = {s.kind for s in scene.shapes}
    return [o for o in absent_objects(scene) if o.split()[0] in colors or o.split()[1] in kinds]


def negative_object(scene: Scene, rng: random.Random, hard_prob: float = 0.5) -> str:
    """An absent object; with probability ``hard_prob`` one that shares an attribute with a present one."""
    hard = hard_absent_objects(scene)
    pool = hard if hard and rng.random() < hard_prob else absent_objects(scene)
    return rng.choice(pool)


def _existence_qa(scene: Scene, rng: random.Random) -> QA:
    form = rng.randrange(3)
    if form == 0:
        positive = rng.random() < 0.5
        obj = rng.choice(scene.objects) if positive else negative_object(scene, rng)
        return QA(f"Is there a {obj}?", "yes" if positive else "no", "existence", "yes/no", "is there a")
    if form == 1:
        kind = rng.choice(KINDS)
        answer = "yes" if scene.with_kind(kind) else "no"
        return QA(f"Are there any {kind}s?", answer, "existence", "yes/no", "are there any")
    s = rng.choice(scene.shapes)
    color = s.color if rng.random() < 0.5 else rng.choice([c for c in COLOR_NAMES if c != s.color])
    return QA(f"Is the shape in the {s.position} {color}?", "yes" if color == s.color else "no", "existence",
              "yes/no", "is the")


QA_FAMILIES: tuple[str, ...] = ("color", "shape", "count", "position", "existence", "size")
QA_FAMILY_WEIGHTS: dict[str, float] = {
    "color": 0.24, "shape": 0.16, "count": 0.18, "position": 0.16, "existence": 0.18, "size": 0.08,
}
_DETERMINISTIC = {"color": _color_qas, "shape": _shape_qas, "count": _count_qas, "position": _position_qas,
                  "size": _size_qas}


def sample_qa(scene: Scene, rng: random.Random, families: tuple[str, ...] | None = None) -> QA:
    """One short-answer question about the scene from a family drawn by ``QA_FAMILY_WEIGHTS``."""
    fams = families or QA_FAMILIES
    family = rng.choices(fams, weights=[QA_FAMILY_WEIGHTS[f] for f in fams])[0]
    if family == "existence":
        return _existence_qa(scene, rng)
    return rng.choice(_DETERMINISTIC[family](scene))


def pope_question(obj: str) -> str:
    """POPE's question wording (it keeps "a" even where English would not)."""
    return f"Is there a {obj} in the image?"


# ---------------------------------------------------------------------------------------------------------
# annotator variation (VQAv2 collects 10 human answers per question)

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "circle": ("round", "circle shape", "dot"),
    "square": ("box", "rectangle", "square shape"),
    "triangle": ("triangular", "triangle shape", "pyramid"),
    "top left": ("upper left", "top left corner", "left"),
    "top right": ("upper right", "top right corner", "right"),
    "bottom left": ("lower left", "bottom left corner", "left"),
    "bottom right": ("lower right", "bottom right corner", "right"),
    "large": ("big", "medium"),
    "small": ("tiny", "medium"),
    "red": ("dark red", "red and white"),
    "green": ("dark green", "light green"),
    "blue": ("dark blue", "light blue"),
    "yellow": ("gold", "light yellow"),
    "purple": ("violet", "magenta"),
}
_NUMBER_WORDS = {str(i): w for i, w in enumerate(_COUNT_WORDS)}


def answer_variants(qa: QA) -> tuple[str, ...]:
    """How a careless-but-right annotator might phrase the answer (some match after VQA normalisation)."""
    if qa.answer_type == "number":
        return (_NUMBER_WORDS.get(qa.answer, qa.answer),)
    if qa.answer_type == "yes/no":
        return (qa.answer,)
    return _SYNONYMS.get(qa.answer, (qa.answer,))


def wrong_answers(qa: QA) -> tuple[str, ...]:
    """Plausible annotator mistakes for the question's answer type."""
    if qa.answer_type == "number":
        n = int(qa.answer)
        return tuple(str(m) for m in (n - 1, n + 1) if m >= 0)
    if qa.answer_type == "yes/no":
        return ("no" if qa.answer == "yes" else "yes",)
    pool = {"color": COLOR_NAMES, "shape": KINDS, "position": POSITIONS, "size": SIZES}[qa.family]
    return tuple(a for a in pool if a != qa.answer)


# ---------------------------------------------------------------------------------------------------------
# multiple-choice questions (MMBench style)


@dataclass(frozen=True)
class MCQ:
    """A multiple-choice question: ``options[0]`` is the correct one (the writer shuffles them)."""

    question: str
    options: tuple[str, ...]
    category: str
    l2_category: str


MC_CATEGORIES: dict[str, str] = {
    "attribute_recognition": "finegrained_perception (instance-level)",
    "object_localization": "finegrained_perception (instance-level)",
    "spatial_relationship": "finegrained_perception (cross-instance)",
    "attribute_comparison": "finegrained_perception (cross-instance)",
}


def _kind_ref(scene: Scene, s: Shape) -> str:
    """Refer to ``s`` without naming its colour: by kind when unique, else by cell."""
    return f"the {s.kind}" if len(scene.with_kind(s.kind)) == 1 else f"the shape in the {s.position}"


def _color_ref(scene: Scene, s: Shape) -> str:
    """Refer to ``s`` without naming its kind: by colour when unique, else by cell."""
    return f"the {s.color} object" if len(scene.with_color(s.color)) == 1 else f"the object in the {s.position}"


def _distractors(pool: tuple[str, ...], answer: str, k: int, rng: random.Random) -> list[str]:
    return rng.sample([p for p in pool if p != answer], k)


def _mc_attribute(scene: Scene, rng: random.Random) -> MCQ | None:
    cat = "attribute_recognition"
    if rng.random() < 0.6:
        s = rng.choice(scene.shapes)
        ref = _kind_ref(scene, s)
        k = rng.choice((1, 2, 3))
        opts = (s.color, *_distractors(COLOR_NAMES, s.color, k, rng))
        return MCQ(f"What color is {ref}?", opts, cat, MC_CATEGORIES[cat])
    s = rng.choice(scene.shapes)
    ref = _color_ref(scene, s)
    k = rng.choice((1, 2))
    opts = (s.kind, *_distractors(KINDS, s.kind, k, rng))
    return MCQ(f"What is the shape of {ref}?", opts, cat, MC_CATEGORIES[cat])


def _mc_localization(scene: Scene, rng: random.Random) -> MCQ | None:
    cat = "object_localization"
    s = rng.choice(scene.shapes)
    k = rng.choice((1, 3, 3))
    opts = (s.position, *_distractors(POSITIONS, s.position, k, rng))
    return MCQ(f"Where is the {s.name} located in the image?", opts, cat, MC_CATEGORIES[cat])


RELATIONS: tuple[str, ...] = ("to the left of", "to the right of", "above", "below")


def spatial_relation(scene: Scene, rng: random.Random) -> tuple[Shape, Shape, str] | None:
    """Two shapes sharing a row or a column, drawn at random, and where the first is relative to the second."""
    pairs = [(a, b) for a in scene.shapes for b in scene.shapes if a != b and (a.row == b.row or a.col == b.col)]
    if not pairs:
        return None
    a, b = rng.choice(pairs)
    if a.row == b.row:
        return a, b, "to the left of" if a.col < b.col else "to the right of"
    return a, b, "above" if a.row < b.row else "below"


def _mc_spatial(scene: Scene, rng: random.Random) -> MCQ | None:
    cat = "spatial_relationship"
    drawn = spatial_relation(scene, rng)
    if drawn is None:
        return None
    a, b, answer = drawn
    opts = (answer, *_distractors(RELATIONS, answer, rng.choice((1, 3)), rng))
    return MCQ(f"Where is the {a.name} relative to the {b.name}?", opts, cat, MC_CATEGORIES[cat])


def _mc_comparison(scene: Scene, rng: random.Random) -> MCQ | None:
    cat = "attribute_comparison"
    if len(scene.shapes) < 2:
        return None
    a, b = rng.sample(list(scene.shapes), 2)
    if a.size != b.size and rng.random() < 0.6:
        big, small = (a, b) if a.size == "large" else (b, a)
        return MCQ(f"Which shape is larger, the {a.name} or the {b.name}?", (f"the {big.name}", f"the {small.name}"),
                   cat, MC_CATEGORIES[cat])
    same = a.color == b.color
    ra, rb = _kind_ref(scene, a), _kind_ref(scene, b)
    return MCQ(f"Do {ra} and {rb} have the same color?", ("yes" if same else "no", "no" if same else "yes"), cat,
               MC_CATEGORIES[cat])


_MC_BUILDERS = {
    "attribute_recognition": _mc_attribute,
    "object_localization": _mc_localization,
    "spatial_relationship": _mc_spatial,
    "attribute_comparison": _mc_comparison,
}


def sample_mcq(scene: Scene, rng: random.Random, category: str) -> MCQ | None:
    """A question of ``category`` about the scene, or None when the scene cannot support one."""
    return _MC_BUILDERS[category](scene, rng)


_HINTS: tuple[str, ...] = (
    "The image shows coloured shapes on a plain background.",
    "Look at the shapes in the picture.\nThe picture is split into four equal parts: top left, top right, "
    "bottom left and bottom right.",
    "Each shape has exactly one color.\nShapes do not overlap.",
    "The picture is a simple drawing.",
    "Shapes can be circles, squares or triangles.\nThey can be red, green, blue, yellow or purple.",
    "Answer based on what is visible in the image.\nSome options may describe shapes that are not there.",
)


def sample_hint(rng: random.Random, prob: float = 0.4) -> str | None:
    """An optional MMBench-style hint; some hints span several lines (so the TSV has to quote them)."""
    return rng.choice(_HINTS) if rng.random() < prob else None


# ---------------------------------------------------------------------------------------------------------
# text-only knowledge about the world (for the text-only SFT source)

_CORNERS = {"circle": 0, "square": 4, "triangle": 3}
_MIXES = {("blue", "yellow"): "green", ("red", "blue"): "purple", ("red", "yellow"): "orange"}


def text_only_qas() -> list[tuple[str, str, str]]:
    """Fixed (question, short answer, long answer) triples about shapes and colours, no image needed."""
    out: list[tuple[str, str, str]] = []
    for k, n in _CORNERS.items():
        out.append((f"How many corners does a {k} have?", str(n), f"A {k} has {_COUNT_WORDS[n]} corners."))
        if n:
            out.append((f"How many sides does a {k} have?", str(n), f"A {k} has {_COUNT_WORDS[n]} straight sides."))
        out.append((f"Is a {k} round?", "yes" if k == "circle" else "no",
                    f"Yes, a {k} is round." if k == "circle" else f"No, a {k} has straight sides."))
    for (a, b), c in _MIXES.items():
        out.append((f"What color do you get when you mix {a} and {b}?", c, f"Mixing {a} and {b} gives {c}."))
    out.append(("Which shape has no corners?", "circle", "A circle has no corners."))
    out.append(("Which shape has three corners?", "triangle", "A triangle has three corners."))
    out.append(("Which shape has four equal sides?", "square", "A square has four equal sides."))
    for c in COLOR_NAMES:
        out.append((f"Is {c} a color?", "yes", f"Yes, {c} is a color."))
    for k in KINDS:
        out.append((f"Is a {k} a color?", "no", f"No, a {k} is a shape, not a color."))
    for i in range(1, 4):
        for j in range(1, 4):
            out.append((f"What is {i} plus {j}?", str(i + j), f"{i} plus {j} is {i + j}."))
    return out
