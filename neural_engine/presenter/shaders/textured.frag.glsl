#version 330 core
// Samples one texture. RGB textures read back with alpha 1 (opaque frames); the HUD's
// RGBA texture keeps its alpha, which the blend state applies.

uniform sampler2D image;
in vec2 uv;
out vec4 color;

void main() {
    color = texture(image, uv);
}
