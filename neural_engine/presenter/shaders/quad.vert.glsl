#version 330 core
// One quad covering the viewport. The viewport, set in Python, places and sizes it;
// the shader only maps clip space to texture space. Textures hold their top row first
// (row 0 = top of the picture), so v grows downwards on the screen.

in vec2 in_position;  // a corner of the quad in clip space, each coordinate -1 or +1
out vec2 uv;

void main() {
    uv = vec2(in_position.x * 0.5 + 0.5, 0.5 - in_position.y * 0.5);
    gl_Position = vec4(in_position, 0.0, 1.0);
}
