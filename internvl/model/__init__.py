"""InternVL-Chat V1.2 on top of transformers' native InternVL classes."""
