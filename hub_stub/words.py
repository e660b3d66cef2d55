"""Words for runpodctl-style transfer codes (``4817-cactus-walrus-ember-quill-topaz``).

Short, common, distinct English words that are easy to read aloud and type; each is 8.06
bits. :mod:`hub_stub.codes` says how many a code takes and what that gives.
"""

from __future__ import annotations

_TEXT = """
    acid acorn actor adapt agent alarm album alert alpha amber angle ankle apple april arena
    armor arrow atlas audio autumn avocado bacon badge baker bamboo banana banjo barley basil
    beacon beaver berry bicycle bison blanket blossom bonus border bottle bracket breeze brick
    bridge bronze brush bubble bucket buffalo button cabin cactus camel canal candle canoe
    canyon carbon carpet castle cedar cellar chalk cherry chess cinema circle citrus clover
    cobalt cocoa comet copper coral cotton coyote crane crater crayon cricket crystal cyclone
    daisy dancer delta desert diamond dinner dolphin domino donkey dragon drum eagle echo
    eclipse elbow ember emerald engine falcon fennel ferry fiber fiddle figure flame flint
    fossil fountain fox galaxy garden garlic gecko ginger glacier globe gopher granite grape
    gravel guitar hammer harbor harvest hazel helmet heron hollow honey horizon hybrid igloo
    indigo insect island ivory jacket jaguar jasmine jelly jigsaw jungle kayak kernel kettle
    kiwi koala ladder lagoon lantern laser lemon lentil library lilac linen lizard lobster
    locket lotus magnet mango maple marble meadow melon meteor mirror mosaic motor muffin
    nectar needle nickel noodle nugget oasis ocean olive onion opal orbit orchid otter oyster
    paddle panda papaya parrot peanut pebble pelican pepper piano pickle pilot planet plaza
    pocket polar pony potato prism puzzle quartz quill rabbit radar radish raven ribbon river
    rocket saddle salmon sandal satin saturn scarf shadow shell silver sketch sleigh socket
    spider spiral sponge spruce squash statue summit sunset sweater tablet tango teapot
    thistle thunder tiger timber tomato topaz torch tractor tulip tunnel turtle umbrella
    unicorn valley velvet violin walnut walrus wheat whistle willow window winter wizard
    yogurt zebra zephyr zigzag zinc
"""

WORDS: tuple[str, ...] = tuple(_TEXT.split())
