"""Conversation templates as data, rendered exactly as the original `conversation.py` (MPT style).

The Hermes-2 template (V1.2) puts no newline after ``<|im_end|>``; that detail changes token ids, so
it is reproduced here rather than using a tokenizer chat template.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Template:
    name: str
    system_template: str
    system_message: str
    roles: tuple[str, str]
    sep: str
    stop_token_ids: tuple[int, ...] = field(default=())

    @property
    def system(self) -> str:
        return self.system_template.format(system_message=self.system_message)

    def render(self, turns: list[tuple[str, str | None]]) -> str:
        """Render ``[(role_index_or_name, message_or_None), ...]``: ``None`` leaves an open generation slot."""
        out = self.system + self.sep
        for role, message in turns:
            role_str = self.roles[0] if role in ("user", "human", 0) else self.roles[1]
            if message is None:
                out += role_str
            else:
                out += role_str + message + self.sep
        return out

    def prompt(self, question: str) -> str:
        """A single-turn inference prompt with the assistant slot left open."""
        return self.render([("user", question), ("assistant", None)])


TEMPLATES: dict[str, Template] = {
    # internvl_chat/internvl/conversation.py@0bfa5e7, the V1.2 template.
    "Hermes-2": Template(
        name="Hermes-2",
        system_template="<|im_start|>system\n{system_message}",
        system_message="Answer the questions.",
        roles=("<|im_start|>user\n", "<|im_start|>assistant\n"),
        sep="<|im_end|>",
        stop_token_ids=(2, 6, 7, 8),
    ),
    # Same layout, InternLM2 system prompt; kept because later 1.x checkpoints name it.
    "internlm2-chat": Template(
        name="internlm2-chat",
        system_template="<|im_start|>system\n{system_message}",
        system_message="You are an AI assistant whose name is InternLM (书生·浦语).",
        roles=("<|im_start|>user\n", "<|im_start|>assistant\n"),
        sep="<|im_end|>",
        stop_token_ids=(2, 92541, 92542, 92543, 92540),
    ),
}

IMG_START_TOKEN = "<img>"
IMG_END_TOKEN = "</img>"
IMG_CONTEXT_TOKEN = "<IMG_CONTEXT>"
# Added by the original finetune script, in this order, after the base vocabulary.
ADDED_SPECIAL_TOKENS = ("<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>")


def get_template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise KeyError(f"unknown conversation template {name!r}; known: {sorted(TEMPLATES)}") from None


def image_span(num_image_token: int) -> str:
    return IMG_START_TOKEN + IMG_CONTEXT_TOKEN * num_image_token + IMG_END_TOKEN
