"""Host-side data access: tracking sequences (frames + boxes) and the datasets made of them.

``sequences`` reads one sequence (OTB, GOT-10k, VOT, LaSOT folders, a video file, an image glob);
``datasets`` lists the sequences of a dataset root (GOT-10k, ImageNet VID 2015, a folder of sequences).
Boxes are 1-indexed ``[x, y, w, h]`` in pixels throughout, as in OTB and GOT-10k.
"""
