import pytest

from mmseg_powerone.class_names import build_prompts, read_class_file


def write(tmp_path, content, name='classes.txt'):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(p)


def test_reads_synonyms_and_background(tmp_path):
    path = write(tmp_path, 'sky, wall\naeroplane, plane\n bicycle \n\n')
    assert read_class_file(path) == [('sky', 'wall'), ('aeroplane', 'plane'),
                                     ('bicycle', )]


def test_single_prompt_uses_all_background_names_first_object_name(tmp_path):
    path = write(tmp_path, 'sky, wall\naeroplane, plane\nbicycle\n')
    p = build_prompts(path)
    assert p.texts == ('Image of sky.', 'Image of wall.', 'Image of aeroplane.',
                       'Image of bicycle.')
    assert p.class_index == (0, 0, 1, 2)
    assert p.class_names == ['sky', 'aeroplane', 'bicycle']


def test_without_background_every_class_is_an_object_class(tmp_path):
    path = write(tmp_path, 'aeroplane, plane\nbicycle, bike\n')
    p = build_prompts(path, has_background=False)
    assert p.texts == ('Image of aeroplane.', 'Image of bicycle.')
    assert not p.has_background and build_prompts(path).has_background
    multi = build_prompts(path, multi_prompt=True, has_background=False)
    assert multi.class_index == (0, 0, 1, 1)


def test_multi_prompt_and_templates(tmp_path):
    path = write(tmp_path, 'sky\naeroplane, plane\n')
    p = build_prompts(path, ['a {}', 'the {}'], multi_prompt=True)
    assert p.texts == ('a sky', 'the sky', 'a aeroplane', 'the aeroplane',
                       'a plane', 'the plane')
    assert p.class_index == (0, 0, 1, 1, 1, 1)
    assert p.names[4] == 'plane'


def test_list_input_forms():
    p = build_prompts(['sky, wall', ['cat', 'kitty'], 'dog'], multi_prompt=True)
    assert p.classes == (('sky', 'wall'), ('cat', 'kitty'), ('dog', ))


def test_voc21_file_has_reference_prompt_count():
    import os
    here = os.path.dirname(__file__)
    p = build_prompts(os.path.join(here, '..', 'configs', '_base_',
                                   'class_names', 'voc21.txt'))
    assert p.num_classes == 21
    assert p.num_prompts == 49  # 29 background names + 20 objects


def test_voc21_file_matches_the_reference_synonyms():
    """The reference's pascal.json lists "TVs" and "TV" beside "tv": in
    multi-prompt mode each is a prompt of its own (the softmax over prompts
    counts it), so the file keeps them."""
    import os
    here = os.path.dirname(__file__)
    p = build_prompts(os.path.join(here, '..', 'configs', '_base_',
                                   'class_names', 'voc21.txt'),
                      multi_prompt=True)
    assert p.classes[20] == ('tv', 'television', 'television set',
                             'television monitor', 'tv monitor', 'monitor',
                             'television screen', 'TVs', 'TV')
    assert p.num_prompts == 116  # the reference's multi-prompt set: 29 + 87


def test_coco_object_file_matches_the_reference_synonyms():
    """The reference's coco.json has two names that hold a comma (one
    prompt each, "Image of aircraft, plane.") and spells "girrafes": the
    multi-prompt set is the reference's, 179 prompts."""
    import os
    here = os.path.dirname(__file__)
    p = build_prompts(os.path.join(here, '..', 'configs', '_base_',
                                   'class_names', 'coco_object.txt'),
                      multi_prompt=True)
    assert p.num_classes == 81 and p.num_prompts == 179
    assert p.classes[5] == ('airplane', 'aeroplane', 'airplanes',
                            'aircraft, plane')
    assert 'Image of hair dryer, blow dryer.' in p.texts
    assert p.classes[24] == ('giraffe', 'girrafes')


def test_quoted_names_hold_commas(tmp_path):
    path = write(tmp_path, 'sky, "wall, brick"\ncat\n')
    assert read_class_file(path) == [('sky', 'wall, brick'), ('cat', )]
    with pytest.raises(ValueError, match='line 2.*Close the quotes'):
        read_class_file(write(tmp_path, 'sky\n"cat, dog\n'))


def test_case_variants_allowed_within_a_class_only():
    p = build_prompts(['sky', 'tv, TV'], multi_prompt=True)
    assert p.texts == ('Image of sky.', 'Image of tv.', 'Image of TV.')
    with pytest.raises(ValueError, match="duplicate class name 'tv'"):
        build_prompts(['sky', 'tv, TV, tv'])


@pytest.mark.parametrize('content, match', [
    ('', 'is empty'),
    ('\n\n', 'is empty'),
    ('sky\n\ncat\n', 'line 2: blank line'),
    ('sky\ncat,,dog\n', 'line 2: empty class name'),
    ('sky\ncat, \n', 'line 2: empty class name'),
    ('sky\ncat\ndog, Cat\n', r"duplicate class name 'Cat' \(line 2 and line 3\)"),
    ('sky\n', 'need at least two'),
    (b'sky\ncat\n\xff\xfedog\n', 'line 3: not valid UTF-8'),
])
def test_file_errors_name_the_problem(tmp_path, content, match):
    path = write(tmp_path, content)
    with pytest.raises(ValueError, match=match):
        read_class_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        build_prompts(str(tmp_path / 'nope.txt'))


@pytest.mark.parametrize('spec, match', [
    ([], 'is empty'),
    (['sky', '  '], r'class_names\[1\] is blank'),
    (['sky', ['cat', '']], r'class_names\[1\]'),
    (['sky', 'cat', 'cat'], 'duplicate class name'),
])
def test_list_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        build_prompts(spec)


def test_template_needs_one_placeholder():
    with pytest.raises(ValueError, match='exactly one'):
        build_prompts(['sky', 'cat'], ['no placeholder'])
